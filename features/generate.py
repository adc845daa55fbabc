"""A synthetic hospital book with a known truth, so that good features and models visibly win.

`generate_book` returns (book, truth); `generate_with_snapshots` adds the truth as of earlier days;
`write_book` writes a book as CSV, Parquet or SQLite. 1M accounts take about a minute and 3.6 GB.

Mechanics (all draws from `np.random.default_rng(seed)`; the same seed gives the same book):

* Guarantors. Payer class (commercial 45%, medicare 25%, medicaid 15%, self-pay 12%, other 3%) drives age
  (medicare mostly 65-90) and ability to pay (payer effect + a neighbourhood effect per zip3 + noise);
  willingness to pay is independent noise rising slightly with age. State is weighted by population with
  Massachusetts boosted to ~36%; zip3 lies in the state's real 3-digit range (never a full ZIP; 2% missing).
  Language: en ~80%, es ~14%, zh/vi/ko/ru/pt/ht ~6% (Puerto Rico mostly es); 6% not recorded. Mobile and
  e-mail on file are likelier for the young; sms_consent is ~60% of mobiles, email_consent ~70% of
  e-mails; ~25% use the portal (the young more). A latent reachability sets P(right party) per call.
* Heterogeneous contact effects (logit lift on the payment hazard, decaying ×0.8 a day): a right-party
  call helps most for older guarantors and not at all for ~30% (likelier among the young), voicemail
  gives 15% of that; a delivered text helps the young a lot and the old little; e-mail is modest; a letter
  helps the old, little the young, and less for non-English speakers (who also answer calls less
  usefully); the portal helps its users. ~5% of guarantors have a bad address (letters come back).
* Accounts: 1 + Poisson(0.5) per guarantor, service dates uniform over [start, end-7]; payer class is the
  guarantor's in 88%; charges are lognormal per service line (inpatient ~$28k median, lab ~$120).
  Insured accounts are adjudicated 14-60 days later (insurance_payment + contractual adjustment) leaving
  a deductible/coinsurance share (commercial 5-35%, medicare 10-25%, medicaid mostly 0), capped; self-pay
  accounts get a 30-50% discount adjustment 1-5 days after service.
* Holds: disputes (3% of accounts, 15-60 days), financial-assistance applications (likelier for low
  ability and self-pay; 20-45 days, then approved - all or half the balance written off - or denied),
  and per guarantor bankruptcy and death (open-ended holds, then a write-off of the balance) and
  cease_contact (open-ended; payments still possible, at a lower rate). Holds still open at the book's
  last day have no end_date. No contact during any hold; no payment during holds other than cease_contact.
* Each day (features.generator_truth.step): statements (letters, propensity 1.0) every 30 days from 3
  days after adjudication; otherwise the historic policy picks one of none/call/sms/email/letter/portal
  by a softmax over what the book shows (large and old balances and older guarantors get calls; texts
  only with consent, e-mail only with consent, portal only when enrolled; no call within 7 days after a
  right-party call). Its probability is logged as `propensity` for the last 40% of the window, NaN before.
  Contacts happen at a uniform local time 08:00-21:00 in the guarantor's state, stored as naive UTC.
* Payment hazard: logistic in ability, willingness, log balance (with a penalty once the balance exceeds
  what the person affords), age of debt and the contact lift. A payment is in full (likelier for small
  balances and able payers; 1% overpay and are refunded), enters a monthly plan (balances >= $200; then
  an instalment every 30 days, each missed with a person-specific chance, cancelled after 2 misses in a
  row) or is partial (15-60%). Balances unpaid 240 days after billing (or after the last payment) are
  written off as bad debt.
* Truth (one row per account open at T = end_date: balance >= $5 and self-pay or adjudicated):
  p_pay_30d = P(>= 1 patient payment in (T, T+30] under the historic policy), Rao-Blackwellised: 24 contact
  paths are sampled with payments held off and ∏(1 - h_t) is averaged; expected_payment = E[first payment
  | one occurs] from the same paths; p_pay_14d_<action> = P(payment in (T, T+14]) if exactly that action
  is taken on T+1 (where the rules allow it, else it equals none) and no other contact, statements
  included - closed-form survival products, calls averaged over their outcomes; policy_<action> = the
  historic policy's probability of each action on T+1 (the logged policy a learned one must beat). The
  truth runs the very code the simulation runs, from the state at T, with its own random stream (the book
  does not depend on which truths are asked for).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from features import generator_truth as gt
from features.scenarios import Scenario, get_scenario
from features.schema import (
    HOLD_KINDS,
    HOSPITAL_TABLES,
    OUTCOMES,
    PAYER_CLASSES,
    SERVICE_LINES,
    TABLES,
    Book,
    empty_frame,
)
from features.states import STATE_TZ

PAYER_SHARE = {"commercial": 0.45, "medicare": 0.25, "medicaid": 0.15, "self_pay": 0.12, "other": 0.03}
PAYER_ABILITY = {"commercial": 0.4, "medicare": 0.1, "medicaid": -0.7, "self_pay": -0.4, "other": 0.0}
STATE_POP = {  # millions, 2020 census, rounded
    "AL": 5.0, "AK": 0.7, "AZ": 7.2, "AR": 3.0, "CA": 39.5, "CO": 5.8, "CT": 3.6, "DE": 1.0, "DC": 0.7,
    "FL": 21.5, "GA": 10.7, "HI": 1.5, "ID": 1.8, "IL": 12.8, "IN": 6.8, "IA": 3.2, "KS": 2.9, "KY": 4.5,
    "LA": 4.7, "ME": 1.4, "MD": 6.2, "MA": 7.0, "MI": 10.1, "MN": 5.7, "MS": 3.0, "MO": 6.2, "MT": 1.1,
    "NE": 2.0, "NV": 3.1, "NH": 1.4, "NJ": 9.3, "NM": 2.1, "NY": 20.2, "NC": 10.4, "ND": 0.8, "OH": 11.8,
    "OK": 4.0, "OR": 4.2, "PA": 13.0, "RI": 1.1, "SC": 5.1, "SD": 0.9, "TN": 6.9, "TX": 29.1, "UT": 3.3,
    "VT": 0.6, "VA": 8.6, "WA": 7.7, "WV": 1.8, "WI": 5.9, "WY": 0.6, "PR": 3.3,
}  # fmt: skip
MA_SHARE = 0.35  # extra weight on the hospital's home state
ZIP3_RANGE = {  # first and last 3-digit ZIP prefix of each state (approximate USPS ranges)
    "MA": (10, 27), "RI": (28, 29), "NH": (30, 38), "ME": (39, 49), "VT": (50, 59), "CT": (60, 69),
    "NJ": (70, 89), "PR": (6, 9), "NY": (100, 149), "PA": (150, 196), "DE": (197, 199), "DC": (200, 205),
    "MD": (206, 219), "VA": (220, 246), "WV": (247, 268), "NC": (270, 289), "SC": (290, 299),
    "GA": (300, 319), "FL": (320, 349), "AL": (350, 369), "TN": (370, 385), "MS": (386, 397),
    "KY": (400, 427), "OH": (430, 459), "IN": (460, 479), "MI": (480, 499), "IA": (500, 528),
    "WI": (530, 549), "MN": (550, 567), "SD": (570, 577), "ND": (580, 588), "MT": (590, 599),
    "IL": (600, 629), "MO": (630, 658), "KS": (660, 679), "NE": (680, 693), "LA": (700, 714),
    "AR": (716, 729), "OK": (730, 749), "TX": (750, 799), "CO": (800, 816), "WY": (820, 831),
    "ID": (832, 838), "UT": (840, 847), "AZ": (850, 865), "NM": (870, 884), "NV": (889, 898),
    "CA": (900, 961), "HI": (967, 968), "OR": (970, 979), "WA": (980, 994), "AK": (995, 999),
}  # fmt: skip
LANGUAGES = ("en", "es", "zh", "vi", "ko", "ru", "pt", "ht")
LANGUAGE_SHARE = (0.80, 0.14, 0.015, 0.012, 0.008, 0.008, 0.01, 0.007)
SERVICE_LINE_SHARE = {
    "emergency": 0.18, "inpatient": 0.05, "outpatient": 0.17, "clinic": 0.30, "lab": 0.15, "imaging": 0.10,
    "other": 0.05,
}  # fmt: skip
CHARGE_MEDIAN = {
    "emergency": 2500, "inpatient": 28000, "outpatient": 3500, "clinic": 350, "lab": 120, "imaging": 1400,
    "other": 600,
}  # fmt: skip
FACILITIES = ("F01", "F02", "F03", "F04", "F05", "F06")
FACILITY_SHARE = (0.35, 0.25, 0.15, 0.10, 0.10, 0.05)
BASE_LOGIT = -4.25  # intercept of the daily payment logit
TRUTH_PATHS = 24
_TRUTH_STREAM = 7919  # mixes into the seed of the truth's own random stream
SCENARIO_METADATA = "payrank.scenario"  # key of the scenario's JSON in the truth frame's attrs and Parquet metadata
_SCENARIO_STREAM = 4049  # the scenario's own draws, so that every scenario shares the default's population
EFFECTS = ("eff_rp", "eff_vm", "eff_sms", "eff_email", "eff_letter", "eff_portal")


def generate_book(
    n_guarantors: int,
    seed: int = 0,
    end_date: str | date = "2026-09-30",
    days: int = 450,
    progress: Callable[[int, int], None] | None = None,
    scenario: str | Scenario = "default",
) -> tuple[Book, pd.DataFrame]:
    """Returns (book, truth). progress(done_days, total_days) is called once per simulated day if given.

    `scenario` (a name in features.scenarios.SCENARIOS, or a Scenario) turns the mechanics' knobs; the same seed
    draws the same population in every scenario.
    """
    book, truths = generate_with_snapshots(n_guarantors, seed, end_date, days, progress=progress, scenario=scenario)
    return book, truths[pd.Timestamp(end_date).normalize()]


def generate_with_snapshots(
    n_guarantors: int,
    seed: int = 0,
    end_date: str | date = "2026-09-30",
    days: int = 450,
    snapshot_dates: Iterable[str | date] = (),
    progress: Callable[[int, int], None] | None = None,
    scenario: str | Scenario = "default",
    deciding_policy: Callable[[gt.Pool, int, np.ndarray], np.ndarray] | None = None,
) -> tuple[Book, dict[pd.Timestamp, pd.DataFrame]]:
    """The book of `generate_book` plus the truth as of each snapshot date (and end_date), keyed by date.

    Earlier snapshots let one check the truth against what the book shows happened afterwards.
    `deciding_policy` replaces the historic policy's action probabilities (features.generate_logged uses it).
    """
    if n_guarantors < 1 or days < 60:
        raise ValueError("need at least 1 guarantor and 60 days")
    end = pd.Timestamp(end_date).normalize()
    start = end - pd.Timedelta(days=days - 1)
    snap_days = sorted({(pd.Timestamp(s).normalize() - start).days for s in snapshot_dates} | {days - 1})
    if snap_days[0] < 0 or snap_days[-1] >= days:
        raise ValueError(f"snapshot dates must lie inside the window {start.date()}..{end.date()}")
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    rng = np.random.default_rng(seed)
    people = _draw_guarantors(n_guarantors, rng, end.year, days)
    _apply_scenario_effects(people, sc, np.random.default_rng([seed, _SCENARIO_STREAM]))
    accounts = _draw_accounts(people, rng, days)
    log = gt.Log(logged_from=int(round(days * (1 - sc.logged_share))))
    mech = gt.Mechanics(
        threshold_cents=int(round(sc.threshold_policy_dollars * 100)),
        drift_start=days - sc.drift_days if sc.drift_days > 0 else gt.NEVER,
        drift_days=max(sc.drift_days, 1),
        drift_factor=sc.drift_factor,
    )
    raw_truths: dict[int, dict[str, np.ndarray]] = {}
    pool, ptr = None, 0
    for d in range(days):
        if d % 7 == 0:
            if pool is not None:
                closed = (pool.adj_day < d) & (pool.bal < gt.MIN_OPEN_CENTS) & (pool.refund_day == gt.NEVER)
                pool = pool.take(~closed)
            nxt = int(np.searchsorted(accounts["svc_day"], d + 7))
            fresh = _pool_rows(people, accounts, slice(ptr, nxt))
            pool, ptr = (fresh if pool is None else gt.Pool.concat(pool, fresh)), nxt
        gt.simulate_day(pool, d, rng, log, mech, deciding_policy)
        if d in snap_days:
            raw_truths[d] = gt.truth_at(pool, d, np.random.default_rng([seed, _TRUTH_STREAM, d]), TRUTH_PATHS, mech)
        if progress is not None:
            progress(d + 1, days)
    book = _assemble(people, accounts, log, rng, start, days)
    truths = {
        start + pd.Timedelta(days=d): _truth_frame(t, people, accounts, start + pd.Timedelta(days=d))
        for d, t in raw_truths.items()
    }
    for frame in truths.values():
        frame.attrs[SCENARIO_METADATA] = sc.metadata()
    return book, truths


# ---------------------------------------------------------------- population


def _draw_guarantors(n: int, rng: np.random.Generator, end_year: int, days: int) -> dict[str, np.ndarray]:
    """Guarantor columns and latent traits, as arrays of length n."""
    payers = list(PAYER_SHARE)
    payer = rng.choice(len(payers), n, p=list(PAYER_SHARE.values()))
    medicare = payer == payers.index("medicare")
    young_old = 18 + 72 * rng.beta(1.5, 3.0, n)
    senior = 65 + np.minimum(rng.exponential(9.0, n), 25.0)
    disabled = rng.uniform(25, 64, n)
    age = np.where(medicare, np.where(rng.random(n) < 0.07, disabled, senior), young_old)
    age = np.clip(np.floor(age), 18, 90)
    birth_year = (end_year - age).astype(np.int64)
    known_age = rng.random(n) >= 0.015
    states = list(STATE_POP)
    w = np.array([STATE_POP[s] for s in states])
    w = w / w.sum() * (1 - MA_SHARE)
    w[states.index("MA")] += MA_SHARE
    state = rng.choice(len(states), n, p=w)
    lo = np.array([ZIP3_RANGE[s][0] for s in states])[state]
    hi = np.array([ZIP3_RANGE[s][1] for s in states])[state]
    zip3 = lo + np.floor((hi - lo + 1) * rng.random(n) ** 2).astype(np.int64)  # denser at the low end
    zip3_known = rng.random(n) >= 0.02
    lang = rng.choice(len(LANGUAGES), n, p=LANGUAGE_SHARE)
    lang = np.where((state == states.index("PR")) & (rng.random(n) < 0.9), 1, lang)
    lang_known = rng.random(n) >= 0.06
    neighbourhood = rng.normal(0.0, 0.45, 1000)[zip3]
    ability = np.array([PAYER_ABILITY[p] for p in payers])[payer] + neighbourhood + rng.normal(0, 0.8, n)
    willingness = 0.012 * (age - 50) + rng.normal(0, 1, n)
    has_mobile = rng.random(n) < gt.sigmoid(3.0 - 0.07 * (age - 30))
    has_email = rng.random(n) < gt.sigmoid(1.8 - 0.05 * (age - 30))
    sms_consent = has_mobile & (rng.random(n) < 0.6)
    email_consent = has_email & (rng.random(n) < 0.7)
    portal = rng.random(n) < gt.sigmoid(-1.3 - 0.04 * (age - 40) + 0.6 * has_email)
    english = lang == 0
    spanish = lang == 1
    call_lang = np.where(english, 1.0, np.where(spanish, 0.7, 0.5))
    call_immune = rng.random(n) < gt.sigmoid(-0.9 - 0.04 * (age - 45))
    eff_rp = np.where(call_immune, 0.0, 2.2 * (0.6 + 0.5 * gt.sigmoid((age - 55) / 10)) * rng.lognormal(0, 0.25, n))
    eff_rp *= call_lang
    obs_age = np.where(known_age, age, 50.0)
    return {
        "payer": payer,
        "age": age,
        "birth_year": birth_year,
        "known_age": known_age,
        "obs_age": obs_age,
        "state": np.array(states)[state],
        "zip3": zip3,
        "zip3_known": zip3_known,
        "lang": lang,
        "lang_known": lang_known,
        "has_mobile": has_mobile,
        "has_email": has_email,
        "sms_consent": sms_consent,
        "email_consent": email_consent,
        "portal": portal,
        "ability": ability,
        "willingness": willingness,
        "base_logit": BASE_LOGIT + 0.55 * ability + 0.6 * willingness,
        "means": np.log(800.0) + 0.9 * ability,
        "full_logit": 0.3 + 0.8 * ability + 0.3 * willingness,
        "reach": gt.sigmoid(-0.9 + 0.035 * (age - 45) + rng.normal(0, 0.6, n)),
        "eff_rp": eff_rp,
        "eff_vm": 0.15 * eff_rp,
        "eff_sms": (0.05 + 2.0 * gt.sigmoid((42 - age) / 7)) * np.where(english, 1.0, 0.8) * rng.lognormal(0, 0.2, n),
        "eff_email": 0.6 * gt.sigmoid((72 - age) / 8) * rng.lognormal(0, 0.3, n) + 0.15 * (ability > 0),
        "eff_letter": (0.1 + 0.8 * gt.sigmoid((age - 62) / 6)) * np.where(english, 1.0, 0.4),
        "eff_portal": 0.7 + 0.4 * rng.random(n),
        "p_return": np.where(rng.random(n) < 0.05, 0.7, 0.02),
        "p_miss": gt.sigmoid(-1.6 - 0.7 * ability),
        "bk_day": _event_day(rng.random(n) < 0.004 + 0.01 * (ability < -1), rng, days),
        "dc_day": _event_day(rng.random(n) < 0.002 + 0.012 * (age >= 75), rng, days),
        "cc_day": _event_day(rng.random(n) < 0.012, rng, days),
    }


def _apply_scenario_effects(people: dict[str, np.ndarray], sc: Scenario, rng: np.random.Generator) -> None:
    """Turn the contact effects as the scenario says (in place): persuadable minorities, or no effect at all."""
    if sc.persuadable_share > 0:
        age, english = people["age"], people["lang"] == 0
        # a fifth on average, likelier among English speakers and older guarantors, so partly visible in the book
        z = np.log(sc.persuadable_share / (1 - sc.persuadable_share)) + 0.04 * (age - 50) + 0.8 * (english - 0.8)
        persuadable = rng.random(len(age)) < gt.sigmoid(z)
        strong = sc.persuadable_effect * rng.lognormal(0, 0.25, len(age))
        people["eff_rp"] = np.where(persuadable, strong, 0.1 * people["eff_rp"])
        people["eff_vm"] = 0.15 * people["eff_rp"]
    if sc.effect_scale != 1.0:
        for k in EFFECTS:
            people[k] = people[k] * sc.effect_scale


def _event_day(happens: np.ndarray, rng: np.random.Generator, days: int) -> np.ndarray:
    return np.where(happens, rng.integers(0, days, len(happens)), gt.NEVER).astype(np.int64)


def _draw_accounts(people: dict[str, np.ndarray], rng: np.random.Generator, days: int) -> dict[str, np.ndarray]:
    """Accounts (sorted by service day) with their static ledger and event schedule."""
    n_g = len(people["payer"])
    per = 1 + rng.poisson(0.5, n_g)
    g = np.repeat(np.arange(n_g), per)
    n = len(g)
    svc = rng.integers(0, days - 7, n)
    order = np.lexsort((g, svc))
    g, svc = g[order], svc[order]
    payer = np.where(
        rng.random(n) < 0.88,
        people["payer"][g],
        rng.choice(len(PAYER_SHARE), n, p=list(PAYER_SHARE.values())),
    )
    names = list(PAYER_SHARE)
    self_pay = payer == names.index("self_pay")
    lines = list(SERVICE_LINE_SHARE)
    line = rng.choice(len(lines), n, p=list(SERVICE_LINE_SHARE.values()))
    median = np.array([CHARGE_MEDIAN[s] for s in lines])[line]
    sigma = np.where(line == lines.index("inpatient"), 0.6, 0.7)
    charge = np.round(np.maximum(median * rng.lognormal(0, sigma), 25.0) * 100).astype(np.int64)
    allowed = np.round(charge * rng.uniform(0.35, 0.75, n)).astype(np.int64)
    share = np.select(
        [payer == names.index(p) for p in ("commercial", "medicare", "medicaid")],
        [
            rng.uniform(0.05, 0.35, n),
            rng.uniform(0.10, 0.25, n),
            np.where(rng.random(n) < 0.85, 0, rng.uniform(0, 0.05, n)),
        ],
        rng.uniform(0.05, 0.30, n),
    )
    cap = np.select(
        [payer == names.index(p) for p in ("commercial", "medicare", "medicaid")],
        [rng.uniform(1500, 6000, n), np.full(n, 2500.0), np.full(n, 100.0)],
        4000.0,
    )
    resp = np.minimum(np.round(allowed * share), cap * 100).astype(np.int64)
    discount = np.round(charge * rng.uniform(0.30, 0.50, n)).astype(np.int64)
    adj_day = svc + np.where(self_pay, rng.integers(1, 6, n), rng.integers(14, 61, n))
    ability = people["ability"][g]
    bill = adj_day + gt.BILL_LAG
    disp = rng.random(n) < 0.03
    fa = rng.random(n) < 0.02 + 0.12 * gt.sigmoid(-1.5 * ability - 1.0) + 0.05 * self_pay
    approved = rng.random(n) < gt.sigmoid(0.5 - 1.2 * ability)
    return {
        "g": g,
        "svc_day": svc,
        "payer": payer,
        "self_pay": self_pay,
        "line": line,
        "facility": rng.choice(len(FACILITIES), n, p=FACILITY_SHARE),
        "facility_known": rng.random(n) >= 0.01,
        "charge": charge,
        "ins_paid": allowed - resp,
        "contractual": charge - allowed,
        "discount": discount,
        "adj_day": adj_day,
        "adj_cents": np.where(self_pay, discount, charge - resp),
        "disp_start": np.where(disp, bill + rng.integers(0, 150, n), gt.NEVER),
        "disp_len": rng.integers(15, 61, n),
        "fa_start": np.where(fa, bill + rng.integers(5, 121, n), gt.NEVER),
        "fa_len": rng.integers(20, 46, n),
        "fa_frac": np.where(approved, np.where(rng.random(n) < 0.6, 1.0, 0.5), 0.0),
        "bk_delay": rng.integers(60, 181, n),
        "dc_delay": rng.integers(30, 121, n),
    }


_PERSON_FIELDS = (
    "base_logit", "means", "full_logit", "obs_age", "reach", "eff_rp", "eff_vm", "eff_sms", "eff_email",
    "eff_letter", "eff_portal", "p_return", "p_miss", "bk_day", "dc_day", "cc_day",
)  # fmt: skip
_ACCOUNT_FIELDS = (
    "svc_day", "adj_day", "adj_cents", "self_pay", "disp_start", "disp_len", "fa_start", "fa_len", "fa_frac",
    "bk_delay", "dc_delay",
)  # fmt: skip


def _pool_rows(people: dict[str, np.ndarray], accounts: dict[str, np.ndarray], rows: slice) -> gt.Pool:
    """Fresh simulation rows for the accounts in `rows` (not yet charged: the balance is the charge)."""
    g = accounts["g"][rows]
    n = len(g)
    cols: dict[str, np.ndarray] = {k: people[k][g] for k in _PERSON_FIELDS}
    cols |= {k: accounts[k][rows] for k in _ACCOUNT_FIELDS}
    cols["can_sms"] = people["sms_consent"][g]
    cols["can_email"] = people["email_consent"][g]
    cols["can_portal"] = people["portal"][g]
    acc = np.arange(rows.start, rows.stop)

    def never() -> np.ndarray:
        return np.full(n, gt.NEVER, np.int64)

    def off() -> np.ndarray:
        return np.zeros(n, bool)

    return gt.Pool(
        acc=acc,
        **cols,
        bal=accounts["charge"][rows].copy(),
        lift=np.zeros(n),
        last_rp=np.full(n, -gt.NEVER, np.int64),
        block_until=np.full(n, -1, np.int64),
        payblock_until=np.full(n, -1, np.int64),
        bk_on=off(),
        dc_on=off(),
        cc_on=off(),
        fa_decide=never(),
        wo_day=never(),
        last_pay=np.full(n, -1, np.int64),
        plan_inst=np.zeros(n, np.int64),
        plan_next=never(),
        plan_miss=np.zeros(n, np.int64),
        refund_day=never(),
        refund_cents=np.zeros(n, np.int64),
    )


# ---------------------------------------------------------------- assembly


def _ids(prefix: str, n: int) -> np.ndarray:
    """Object array of ids like G0000042, zero-padded to a common width."""
    if n == 0:
        return np.zeros(0, object)
    width = max(6, len(str(n - 1)))
    return np.strings.add(prefix, np.strings.zfill(np.arange(n).astype(np.str_), width)).astype(object)


def _cat(codes: np.ndarray, levels: Iterable[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, np.int64), categories=list(levels))


def _dates(start: pd.Timestamp, day: np.ndarray) -> np.ndarray:
    return (np.datetime64(start.date(), "D") + day.astype("timedelta64[D]")).astype("datetime64[ns]")


def _cols(log_rows: list[tuple[np.ndarray, ...]], n_cols: int) -> list[np.ndarray]:
    if not log_rows:
        return [np.zeros(0, np.int64) for _ in range(n_cols)]
    return [np.concatenate([r[i] for r in log_rows]) for i in range(n_cols)]


def _assemble(
    people: dict[str, np.ndarray],
    accounts: dict[str, np.ndarray],
    log: gt.Log,
    rng: np.random.Generator,
    start: pd.Timestamp,
    days: int,
) -> Book:
    """Typed contract tables from the drawn population and the simulation's log."""
    n_g, n_a = len(people["payer"]), len(accounts["g"])
    gid, aid = _ids("G", n_g), _ids("A", n_a)
    lang = np.array(LANGUAGES, dtype=object)[people["lang"]]
    zip3 = np.strings.zfill(people["zip3"].astype(np.str_), 3).astype(object)
    guarantors = pd.DataFrame(
        {
            "guarantor_id": gid,
            "birth_year": pd.arrays.IntegerArray(people["birth_year"], ~people["known_age"]),
            "state": pd.Categorical(people["state"], categories=TABLES["guarantors"].column("state").values),
            "zip3": np.where(people["zip3_known"], zip3, None),
            "language": np.where(people["lang_known"], lang, None),
            "has_mobile": people["has_mobile"],
            "has_email": people["has_email"],
            "sms_consent": people["sms_consent"],
            "email_consent": people["email_consent"],
            "portal_enrolled": people["portal"],
        }
    )
    facility = np.array(FACILITIES, dtype=object)[accounts["facility"]]
    account_frame = pd.DataFrame(
        {
            "account_id": aid,
            "guarantor_id": gid[accounts["g"]],
            "service_date": _dates(start, accounts["svc_day"]),
            "service_line": _cat(accounts["line"], SERVICE_LINES),
            "payer_class": _cat(accounts["payer"], PAYER_CLASSES),
            "facility_id": np.where(accounts["facility_known"], facility, None),
        }
    )
    transactions = _transactions(accounts, log, aid, start, days)
    contacts = _contacts(people, accounts, log, rng, aid, start)
    acc, kind, begin, end = _cols(log.holds, 4)
    end_dates = pd.Series(_dates(start, np.minimum(end, days))).where(end < days)
    holds = pd.DataFrame(
        {
            "account_id": aid[acc] if len(acc) else np.zeros(0, object),
            "kind": _cat(kind, HOLD_KINDS),
            "start_date": _dates(start, begin),
            "end_date": end_dates.to_numpy("datetime64[ns]"),
        }
    )
    if not len(holds):
        holds = empty_frame("holds")
    frames = (guarantors, account_frame, transactions, contacts, holds)
    return Book(*(_strings_as_objects(df, name) for df, name in zip(frames, HOSPITAL_TABLES, strict=True)))


def _strings_as_objects(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """The contract's in-memory form of string columns: pandas' string dtype (missing is NA), as the loader gives."""
    for col in TABLES[table].columns:
        if col.kind == "string":
            df[col.name] = df[col.name].astype("string")
    return df


def _transactions(
    accounts: dict[str, np.ndarray], log: gt.Log, aid: np.ndarray, start: pd.Timestamp, days: int
) -> pd.DataFrame:
    """Charges and adjudications (drawn up front) plus the simulation's payments, write-offs and refunds."""
    k = gt.TXN
    adj = accounts["adj_day"]
    ins = np.flatnonzero(~accounts["self_pay"] & (adj < days))
    sp = np.flatnonzero(accounts["self_pay"] & (adj < days))
    every = np.arange(len(aid))
    parts = [
        (every, accounts["svc_day"], k["charge"], accounts["charge"]),
        (ins, adj[ins], k["insurance_payment"], -accounts["ins_paid"][ins]),
        (ins, adj[ins], k["adjustment"], -accounts["contractual"][ins]),
        (sp, adj[sp], k["adjustment"], -accounts["discount"][sp]),
    ]
    acc = np.concatenate([p[0] for p in parts] + _cols(log.ledger, 4)[0:1])
    day = np.concatenate([p[1] for p in parts] + _cols(log.ledger, 4)[1:2])
    kind = np.concatenate([np.full(len(p[0]), p[2], np.int8) for p in parts] + _cols(log.ledger, 4)[2:3])
    cents = np.concatenate([p[3] for p in parts] + _cols(log.ledger, 4)[3:4])
    order = np.lexsort((np.arange(len(acc)), acc, day))
    acc, day, kind, cents = acc[order], day[order], kind[order], cents[order]
    return pd.DataFrame(
        {
            "transaction_id": _ids("T", len(acc)),
            "account_id": aid[acc],
            "posted_date": _dates(start, day),
            "kind": _cat(kind, TABLES["transactions"].column("kind").values),
            "amount": cents / 100.0,
        }
    )


def _utc_offsets(tz_names: list[str], start: pd.Timestamp, days: int) -> np.ndarray:
    """(n_tz, days) seconds to add to a local daytime (08-21h) to get UTC; DST never switches then."""
    noon = pd.date_range(start, periods=days, freq="D") + pd.Timedelta(hours=12)
    out = np.empty((len(tz_names), days), np.int64)
    for i, tz in enumerate(tz_names):
        utc = noon.tz_localize(tz).tz_convert("UTC").tz_localize(None)
        out[i] = (utc - noon).total_seconds().astype(np.int64)
    return out


def _contacts(
    people: dict[str, np.ndarray],
    accounts: dict[str, np.ndarray],
    log: gt.Log,
    rng: np.random.Generator,
    aid: np.ndarray,
    start: pd.Timestamp,
) -> pd.DataFrame:
    acc, day, channel, outcome, prop = _cols(log.contacts, 5)
    days = int(day.max()) + 1 if len(day) else 1
    tz_names = sorted(set(STATE_TZ.values()))
    tz_of_state = {s: tz_names.index(STATE_TZ[s]) for s in STATE_TZ}
    g_tz = pd.Series(people["state"], dtype=object).map(tz_of_state).to_numpy(np.int64)
    local_sec = rng.integers(8 * 3600, 21 * 3600, len(acc))
    offsets = _utc_offsets(tz_names, start, days)
    utc_sec = day.astype(np.int64) * 86400 + local_sec + offsets[g_tz[accounts["g"][acc]], day]
    at = np.datetime64(start.date(), "s") + utc_sec.astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "contact_id": _ids("C", len(acc)),
            "account_id": aid[acc],
            "contacted_at": at.astype("datetime64[ns]"),
            "channel": _cat(channel.astype(np.int64) - 1, TABLES["contacts"].column("channel").values),
            "outcome": _cat(outcome, OUTCOMES),
            "propensity": prop.astype(np.float64),
        }
    )


def _truth_frame(
    t: dict[str, np.ndarray],
    people: dict[str, np.ndarray],
    accounts: dict[str, np.ndarray],
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    n_g, n_a = len(people["payer"]), len(accounts["g"])
    order = np.argsort(t["acc"], kind="stable")
    acc = t["acc"][order]
    g = accounts["g"][acc]
    frame = pd.DataFrame(
        {
            "account_id": _ids("A", n_a)[acc],
            "guarantor_id": _ids("G", n_g)[g],
            "as_of": np.full(len(acc), as_of.to_datetime64()).astype("datetime64[ns]"),
            "balance": t["balance"][order] / 100.0,
            "p_pay_30d": t["p_pay_30d"][order],
        }
    )
    for action in ("none", "call", "sms", "email", "letter", "portal"):
        frame[f"p_pay_14d_{action}"] = t[f"p_pay_14d_{action}"][order]
    for action in ("none", "call", "sms", "email", "letter", "portal"):
        frame[f"policy_{action}"] = t[f"policy_{action}"][order]
    frame["expected_payment"] = np.round(t["expected_payment"][order] / 100.0, 2)
    frame["ability"] = people["ability"][g]
    frame["willingness"] = people["willingness"][g]
    return frame


# ---------------------------------------------------------------- writing

BOOK_FILES = {"csv": "{}.csv", "parquet": "{}.parquet"}
WRITE_CHUNK = 500_000  # rows converted to text at a time, to bound memory
TRUTH_KINDS = {"as_of": "date"}


def _kinds(table: str) -> dict[str, str]:
    return {c.name: c.kind for c in TABLES[table].columns} if table in TABLES else TRUTH_KINDS


def _text_frame(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The table as the text conventions want it: ISO dates and timestamps, true/false, strings, cents."""
    out = {}
    for name, col in df.items():
        kind = kinds.get(str(name))
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[name] = col.astype(object).where(col.notna(), None)
        elif pd.api.types.is_bool_dtype(col.dtype):
            out[name] = np.where(col.to_numpy(bool), "true", "false").astype(object)
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            values = col.to_numpy("datetime64[ns]")
            text = np.datetime_as_string(values.astype("datetime64[s]" if kind == "timestamp" else "datetime64[D]"))
            out[name] = np.where(np.isnat(values), None, text.astype(object))
        elif kind == "money":
            out[name] = col.round(2)
        else:
            out[name] = col
    return pd.DataFrame(out, index=df.index)


def _money_rounded(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    money = [c for c in df.columns if kinds.get(c) == "money"]
    return df.assign(**{c: df[c].round(2) for c in money}) if money else df


def _chunks(df: pd.DataFrame) -> Iterable[pd.DataFrame]:
    """Row slices of at most WRITE_CHUNK rows (one empty slice for an empty frame)."""
    for lo in range(0, max(len(df), 1), WRITE_CHUNK):
        yield df.iloc[lo : lo + WRITE_CHUNK]


def _write_parquet(df: pd.DataFrame, path: Path, kinds: dict[str, str], metadata: dict[str, str] | None = None) -> None:
    """Typed Parquet: dates as date32, timestamps as timestamp[s], enums as plain strings; `metadata` goes into
    the file's key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for name, col in df.items():
        if isinstance(col.dtype, pd.CategoricalDtype):
            arr = pa.array(col.astype(object).where(col.notna(), None).to_numpy(), type=pa.string())
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            values = col.to_numpy("datetime64[ns]")
            if kinds.get(str(name)) == "timestamp":
                arr = pa.array(values.astype("datetime64[s]"), type=pa.timestamp("s"), mask=np.isnat(values))
            else:
                arr = pa.array(values.astype("datetime64[D]"), type=pa.date32(), mask=np.isnat(values))
        elif col.dtype == object:
            arr = pa.array(col.to_numpy(), type=pa.string(), from_pandas=True)
        else:
            arr = pa.Array.from_pandas(col)
        arrays.append(arr)
        names.append(str(name))
    table = pa.Table.from_arrays(arrays, names=names)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    pq.write_table(table, path)


def _write_csv(df: pd.DataFrame, path: Path, kinds: dict[str, str]) -> None:
    """CSV with a plain header; values are quoted only if one holds a comma, quote or newline."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    for quoting in ("none", "needed"):
        try:
            with open(path, "wb") as fh:
                fh.write((",".join(map(str, df.columns)) + "\n").encode())
                options = pacsv.WriteOptions(include_header=False, quoting_style=quoting)
                for chunk in _chunks(df):
                    text = pa.Table.from_pandas(_text_frame(chunk, kinds), preserve_index=False)
                    pacsv.write_csv(text, fh, options)
            return
        except pa.ArrowInvalid:
            if quoting == "needed":
                raise


def _write_sqlite(tables: dict[str, pd.DataFrame], path: Path) -> None:
    write_sql(tables, f"sqlite:///{path}")


def write_sql(tables: dict[str, pd.DataFrame], url: str) -> None:
    """One SQL table per contract table (SQLite, PostgreSQL, …), with the text forms and explicit column types.

    Tables of the same names are replaced, in one transaction, so a failure leaves the database as it was.
    """
    import sqlalchemy as sa

    sql_type = {"int": sa.Integer, "float": sa.Float, "money": sa.Float}
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for name, df in tables.items():
                kinds = _kinds(name)
                types = {c: sql_type.get(kinds[c], sa.Text)() for c in df.columns}
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
                for chunk in _chunks(df):
                    _text_frame(chunk, kinds).to_sql(name, conn, index=False, if_exists="append", dtype=types)
    finally:
        engine.dispose()


def write_book(
    book: Book, out: Path, fmt: Literal["csv", "parquet", "sqlite"], truth: pd.DataFrame | None = None
) -> Path:
    """csv/parquet: one file per table named <table>.csv|.parquet in `out`; sqlite: `out/book.db` with one table
    per contract table (via SQLAlchemy + pandas.to_sql). truth → out/truth.parquet (with the scenario's JSON under
    the metadata key SCENARIO_METADATA). Dates written ISO
    `YYYY-MM-DD`, timestamps ISO `YYYY-MM-DDTHH:MM:SS`, booleans true/false, money rounded to cents. Write to a
    temp dir/file then rename so a failure never leaves half a book.

    Parquet keeps native types (date32, timestamp[s], bool); csv and sqlite hold the text forms above. Book
    files of the other formats (and a stale truth.parquet) in `out` are removed, so `out` holds one book.
    Returns `out` for csv/parquet and `out/book.db` for sqlite.
    """
    if fmt not in ("csv", "parquet", "sqlite"):
        raise ValueError(f"unknown format {fmt!r}: use csv, parquet or sqlite")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tables = {name: _money_rounded(df, _kinds(name)) for name, df in book.tables().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if fmt == "sqlite":
            _write_sqlite(tables, tmp / "book.db")
        else:
            for name, df in tables.items():
                target = tmp / BOOK_FILES[fmt].format(name)
                (_write_csv if fmt == "csv" else _write_parquet)(df, target, _kinds(name))
        if truth is not None:
            meta = {SCENARIO_METADATA: truth.attrs[SCENARIO_METADATA]} if SCENARIO_METADATA in truth.attrs else None
            rounded = truth.assign(balance=truth["balance"].round(2))
            _write_parquet(rounded, tmp / "truth.parquet", TRUTH_KINDS, meta)
        written = sorted(p.name for p in tmp.iterdir())
        out.mkdir(exist_ok=True)
        stale = {pattern.format(t) for pattern in BOOK_FILES.values() for t in TABLES} | {
            "book.db",
            "truth.parquet",
        }
        for name in stale - set(written):
            (out / name).unlink(missing_ok=True)
        for name in written:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "book.db" if fmt == "sqlite" else out


def read_truth(path: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """A truth.parquet and the scenario it was generated under ({} when the file does not say)."""
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(SCENARIO_METADATA.encode())
    return table.to_pandas(), (json.loads(raw) if raw else {})
