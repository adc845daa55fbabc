"""payrank on Apache Spark: the same features, scores and worklist as the pandas path, per group of guarantors.

Import the submodules only when `--engine spark` is chosen: pyspark is an optional extra (`payrank[spark]`).
"""
