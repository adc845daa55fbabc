"""MLflow's tracking store and registry on PostgreSQL (`--tracking-uri postgresql+psycopg://…`), for teams.

Runs when PAYRANK_TEST_POSTGRES_URL is set; the module gets its own database (tests/store_helpers.py), dropped after.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import BOOK_END
from tests.store_helpers import postgres_url  # noqa: F401 (a fixture)


@pytest.mark.slow
def test_register_and_load_through_postgres(trained_session, postgres_url: str) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from serving.cli import app
    from serving.model_store import default_uri, load_model
    from training.tracking import use_tracking
    from training.train import TrainConfig, log_and_register

    cfg = TrainConfig(as_of=BOOK_END, tracking_uri=postgres_url, model_name="payrank-pg")
    result = log_and_register(trained_session.trained, cfg)
    assert result.version == "1" and result.promoted

    use_tracking(postgres_url, must_exist=True)
    loaded = load_model(default_uri("payrank-pg"))
    feats = trained_session.trained.holdout.head(200)
    want = trained_session.trained.scorer.predict(feats)["p_pay"].to_numpy()
    assert np.array_equal(loaded.scorer.predict(feats)["p_pay"].to_numpy(), want)

    listed = CliRunner().invoke(
        app, ["models", "--tracking-uri", postgres_url, "--model-name", "payrank-pg"], env={"COLUMNS": "250"}
    )
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output
