"""The walkthrough notebook runs from top to bottom on a small book, and is stored without outputs.

The kernel is the `python3` spec that ipykernel ships into the venv (`share/jupyter/kernels/python3`); its
argv starts with "python", which jupyter_client replaces by the running interpreter, so the kernel runs the
venv's Python with no manual `ipykernel install`. The test checks that by asking the kernel for sys.prefix.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01-explore-and-train.ipynb"
METRICS_LINE = re.compile(r"^NOTEBOOK_METRICS (.+)$", re.MULTILINE)
PREFIX_MARK = "KERNEL_PREFIX="


def _text(cell) -> str:
    """All stream and text/plain output of a code cell."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"outputs stored in cell: {cell.source[:60]!r}"
        assert cell.execution_count is None, f"execution_count stored in cell: {cell.source[:60]!r}"


@pytest.fixture(scope="module")
def executed():
    """The notebook executed on a 3,000-guarantor book, plus the kernel's sys.prefix."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PAYRANK_NB_GUARANTORS", "3000")  # the kernel inherits this process's environment
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        # one extra cell, in memory only: which interpreter did the kernel run?
        nb.cells.append(nbformat.v4.new_code_cell(f"import sys; print('{PREFIX_MARK}' + sys.prefix)"))
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO / "notebooks")}}
        )
        client.execute()  # raises CellExecutionError on the first cell that fails
    finally:
        mp.undo()
    prefix = _text(nb.cells.pop()).strip().removeprefix(PREFIX_MARK)
    return nb, prefix


@pytest.mark.slow
def test_kernel_runs_this_environment(executed):
    _, prefix = executed
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()


@pytest.mark.slow
def test_notebook_runs_without_errors_and_shows_its_results(executed):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    for cell in code:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{cell.source[:60]!r}: {errors[0].get('ename')}: {errors[0].get('evalue')}"

    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 5  # balances, payment curves, calibration, gains, uplift scatter
    html = "".join(o.get("data", {}).get("text/html", "") for c in code for o in c.outputs)
    assert "payer_class" in html and "age_band" in html  # the subgroup table

    text = "\n".join(_text(c) for c in code)
    reasons = re.search(r"^reason codes: (.+)$", text, re.MULTILINE)
    assert reasons and reasons.group(1).strip()

    found = METRICS_LINE.findall(text)
    assert len(found) == 1, text[-2000:]
    metrics = dict(kv.split("=", 1) for kv in found[0].split())
    assert float(metrics["holdout_auc"]) > 0.7
    assert float(metrics["holdout_auc"]) > float(metrics["holdout_auc_balance_only"]) + 0.1
    assert 0 < float(metrics["holdout_brier"]) < 0.25
    assert int(metrics["open_accounts"]) > 0
    corr = float(metrics["uplift_corr_call"])
    if metrics["call_fallback"] == "none":
        assert corr > 0, metrics
    else:  # a small book may leave too little signal for the call model: then it predicts no uplift at all
        assert math.isnan(corr), metrics
