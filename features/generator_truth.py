"""The synthetic book's ground truth: one daily step shared by the simulation and by the truth it reports.

`step` advances every account of a `Pool` by one day (scheduled events, statements, the historic policy's
contact, the contact's lift) and returns each account's payment hazard for that day; `apply_payments`
draws the payments (or, for the truth, none). The truth (`truth_at`) rolls the very same code forward from
the state at day T, so the simulation and the reported probabilities cannot disagree.

All amounts are integer cents; days are integer indices into the simulated window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from features.schema import ACTIONS, HOLD_KINDS, OUTCOMES, TRANSACTION_KINDS

NEVER = 1 << 30  # a day that never comes
MIN_OPEN_CENTS = 500  # an account with a balance under $5.00 is not worked
BILL_LAG = 3  # first statement (and start of collection) this many days after adjudication
STATEMENT_EVERY = 30
BAD_DEBT_DAYS = 240  # days without a payment (since billing) before the bad-debt write-off
CALL_GAP = 7  # no call within this many days after a right-party call
PLAN_EVERY = 30
PLAN_MAX_MISSES = 2  # consecutive missed instalments that cancel a plan
DECAY = 0.8  # daily decay of a contact's lift (logit units)
LOGGED_SHARE = 0.4  # default: the last 40% of the window logs the policy's propensity (see features.scenarios)

CH = {a: i for i, a in enumerate(ACTIONS)}  # none=0, call, sms, email, letter, portal
OUT = {o: i for i, o in enumerate(OUTCOMES)}
HOLD = {k: i for i, k in enumerate(HOLD_KINDS)}
TXN = {k: i for i, k in enumerate(TRANSACTION_KINDS)}

# Hazard: logit h = base (person) + balance + age-of-debt + lift (+ cease_contact penalty).
HAZ_BALANCE = -0.30  # per log(balance / $300)
HAZ_OVER_MEANS = -0.6  # extra penalty once the balance exceeds what the person can afford
HAZ_EARLY_DECAY = -0.010  # per day of debt age over the first 90 days
HAZ_LATE_DECAY = -0.002  # per day after that
HAZ_CEASE = -0.5
# Outcome probabilities that do not depend on the person.
P_WRONG_NUMBER = 0.04
P_VOICEMAIL = 0.45  # of the calls not answered by the right party and not a wrong number
P_SMS_FAIL = 0.04
P_EMAIL_FAIL = 0.07
# Payment kinds.
P_PLAN = 0.5  # of the payments that are not in full, on balances of at least $200
PARTIAL_LO, PARTIAL_HI = 0.15, 0.60
P_OVERPAY = 0.01  # of full payments; refunded 10-30 days later
OVERPAY_MEAN_CENTS = 1050.0


@dataclass
class Pool:
    """Struct of arrays, one row per account being simulated (or per account × sampled path in the truth)."""

    acc: np.ndarray  # account index
    svc_day: np.ndarray
    adj_day: np.ndarray  # adjudication (insured) or self-pay discount day
    adj_cents: np.ndarray  # balance reduction posted on adj_day
    self_pay: np.ndarray
    base_logit: np.ndarray  # person part of the payment logit (ability, willingness)
    means: np.ndarray  # log of the balance (in $) the person can comfortably pay
    full_logit: np.ndarray  # person part of P(pay in full | pay)
    obs_age: np.ndarray  # age as the book shows it (50 when unknown); used by the policy
    can_sms: np.ndarray
    can_email: np.ndarray
    can_portal: np.ndarray
    reach: np.ndarray  # P(right party) per call
    eff_rp: np.ndarray  # logit lift of a right-party call
    eff_vm: np.ndarray
    eff_sms: np.ndarray
    eff_email: np.ndarray
    eff_letter: np.ndarray
    eff_portal: np.ndarray
    p_return: np.ndarray  # P(letter returned)
    p_miss: np.ndarray  # P(missing a plan instalment)
    disp_start: np.ndarray
    disp_len: np.ndarray
    fa_start: np.ndarray
    fa_len: np.ndarray
    fa_frac: np.ndarray  # share of the balance written off on an approved financial-assistance application
    bk_day: np.ndarray  # guarantor's bankruptcy day
    bk_delay: np.ndarray  # days from the bankruptcy hold to the write-off
    dc_day: np.ndarray  # guarantor's death
    dc_delay: np.ndarray
    cc_day: np.ndarray  # guarantor asks to cease contact
    # dynamic state
    bal: np.ndarray  # cents
    lift: np.ndarray
    last_rp: np.ndarray  # day of the last right-party call
    block_until: np.ndarray  # no contact on days <= block_until
    payblock_until: np.ndarray  # no payment on days <= payblock_until
    bk_on: np.ndarray
    dc_on: np.ndarray
    cc_on: np.ndarray
    fa_decide: np.ndarray
    wo_day: np.ndarray  # write-off day after bankruptcy or death
    last_pay: np.ndarray
    plan_inst: np.ndarray  # cents per instalment; 0 = no plan
    plan_next: np.ndarray
    plan_miss: np.ndarray
    refund_day: np.ndarray
    refund_cents: np.ndarray

    def __len__(self) -> int:
        return len(self.acc)

    def take(self, idx: np.ndarray) -> Pool:
        """A copy of the rows `idx` (bool mask or positions)."""
        return Pool(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(a: Pool, b: Pool) -> Pool:
        return Pool(**{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(a)})


@dataclass(frozen=True)
class Mechanics:
    """Day-level rules a scenario changes (see features.scenarios): how the historic policy calls, and drift."""

    threshold_cents: int = 0  # > 0: calls go to balances at or above this, nearly deterministically
    drift_start: int = NEVER  # first day of the hazard's linear decline
    drift_days: int = 1
    drift_factor: float = 1.0  # the hazard's multiple from drift_start + drift_days on

    def hazard_scale(self, d: int) -> float:
        """The multiple of the payment hazard on day d."""
        if d < self.drift_start:
            return 1.0
        done = min(1.0, (d - self.drift_start + 1) / self.drift_days)
        return 1.0 - (1.0 - self.drift_factor) * done


DEFAULT_MECHANICS = Mechanics()
THRESHOLD_CALL_LOGIT = (-0.85, -5.75)  # above / below the threshold: ~28% and ~0.3% of contactable days


class Log:
    """What the simulation writes down: ledger rows, contacts and holds, as columns of day chunks."""

    def __init__(self, logged_from: int) -> None:
        self.logged_from = logged_from
        self.ledger: list[tuple[np.ndarray, ...]] = []  # acc, day, kind, cents
        self.contacts: list[tuple[np.ndarray, ...]] = []  # acc, day, channel, outcome, propensity
        self.holds: list[tuple[np.ndarray, ...]] = []  # acc, kind, start, end (NEVER = open-ended)

    def post(self, acc: np.ndarray, d: int, kind: str, cents: np.ndarray) -> None:
        if len(acc):
            self.ledger.append((acc, np.full(len(acc), d, np.int32), np.full(len(acc), TXN[kind], np.int8), cents))

    def contact(self, acc: np.ndarray, d: int, channel: np.ndarray, outcome: np.ndarray, prop: np.ndarray) -> None:
        if len(acc):
            prop = prop if d >= self.logged_from else np.full(len(acc), np.nan)
            self.contacts.append((acc, np.full(len(acc), d, np.int32), channel.astype(np.int8), outcome, prop))

    def hold(self, acc: np.ndarray, kind: str, start: int, end: np.ndarray) -> None:
        if len(acc):
            self.holds.append((acc, np.full(len(acc), HOLD[kind], np.int8), np.full(len(acc), start, np.int32), end))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def is_open(p: Pool, d: int) -> np.ndarray:
    """Billed and carrying at least $5.00 on day d."""
    return (p.bal >= MIN_OPEN_CENTS) & (d >= p.adj_day + BILL_LAG)


def apply_events(p: Pool, d: int, log: Log | None) -> None:
    """Day d's scheduled events: adjudication, refunds, holds, write-offs. Deterministic given the state."""
    m = p.adj_day == d
    p.bal[m] -= p.adj_cents[m]
    m = np.flatnonzero(p.refund_day == d)
    if len(m):
        p.bal[m] += p.refund_cents[m]
        if log:
            log.post(p.acc[m], d, "refund", p.refund_cents[m])
        p.refund_day[m] = NEVER
    live = is_open(p, d)
    m = np.flatnonzero(live & (p.disp_start == d))
    if len(m):
        end = d + p.disp_len[m] - 1
        _hold(p, m, end, end, log, "dispute", d)
    m = np.flatnonzero(live & (p.fa_start == d))
    if len(m):
        end = d + p.fa_len[m]
        p.fa_decide[m] = end
        _hold(p, m, end, end, log, "financial_assistance", d)
    m = np.flatnonzero((p.fa_decide == d) & (p.fa_frac > 0) & (p.bal > 0))
    if len(m):
        cut = np.round(p.bal[m] * p.fa_frac[m]).astype(np.int64)
        cut = np.where(p.bal[m] - cut < MIN_OPEN_CENTS, p.bal[m], cut)
        _write_off(p, m, cut, d, log)
    for day, delay, on, kind in (
        (p.bk_day, p.bk_delay, p.bk_on, "bankruptcy"),
        (p.dc_day, p.dc_delay, p.dc_on, "deceased"),
    ):
        m = np.flatnonzero(live & (d >= day) & ~on)
        if len(m):
            on[m] = True
            p.wo_day[m] = np.minimum(p.wo_day[m], d + delay[m])
            _hold(p, m, NEVER, NEVER, log, kind, d)
    m = np.flatnonzero(live & (d >= p.cc_day) & ~p.cc_on)
    if len(m):
        p.cc_on[m] = True
        _hold(p, m, NEVER, p.payblock_until[m], log, "cease_contact", d)
    m = np.flatnonzero((p.wo_day == d) & (p.bal > 0))
    if len(m):
        _write_off(p, m, p.bal[m].copy(), d, log)
    stale = d - np.maximum(p.adj_day + BILL_LAG, p.last_pay) >= BAD_DEBT_DAYS
    m = np.flatnonzero(is_open(p, d) & stale)
    if len(m):
        _write_off(p, m, p.bal[m].copy(), d, log)


def _hold(
    p: Pool,
    m: np.ndarray,
    block: np.ndarray | int,
    payblock: np.ndarray | int,
    log: Log | None,
    kind: str,
    d: int,
) -> None:
    p.block_until[m] = np.maximum(p.block_until[m], block)
    p.payblock_until[m] = np.maximum(p.payblock_until[m], payblock)
    if log:
        log.hold(p.acc[m], kind, d, np.broadcast_to(np.asarray(block, np.int64), m.shape).astype(np.int32))


def _write_off(p: Pool, m: np.ndarray, cents: np.ndarray, d: int, log: Log | None) -> None:
    p.bal[m] -= cents
    if log:
        log.post(p.acc[m], d, "adjustment", -cents)


def contactable(p: Pool, d: int) -> np.ndarray:
    return is_open(p, d) & (d > p.block_until)


def allowed_actions(p: Pool, d: int, rows: np.ndarray) -> np.ndarray:
    """(6, len(rows)) bool for contactable `rows`: which actions the rules allow (none always; texts, e-mail
    and portal need consent or enrolment; no call within CALL_GAP days after a right-party call)."""
    ok = np.ones((len(ACTIONS), len(rows)), bool)
    ok[CH["call"]] = d - p.last_rp[rows] > CALL_GAP
    ok[CH["sms"]] = p.can_sms[rows]
    ok[CH["email"]] = p.can_email[rows]
    ok[CH["portal"]] = p.can_portal[rows]
    return ok


def policy_probs(p: Pool, d: int, rows: np.ndarray, mech: Mechanics = DEFAULT_MECHANICS) -> np.ndarray:
    """(6, len(rows)) action probabilities of the historic policy for contactable `rows`: a softmax (none has
    logit 0) over what the book shows; confounded - large and old balances and older guarantors get calls.
    Under a threshold policy the call logit is set by the balance alone (nearly deterministic)."""
    debt_age = (d - p.adj_day[rows] - BILL_LAG).astype(np.float64)
    log_bal = np.log(np.maximum(p.bal[rows], 1) / 30000.0)
    age = p.obs_age[rows]
    senior = (age >= 65).astype(np.float64)
    on_plan = (p.plan_inst[rows] > 0).astype(np.float64)
    z = np.zeros((len(ACTIONS), len(rows)))
    z[CH["call"]] = -3.8 + 0.7 * log_bal + 0.006 * debt_age + 0.4 * senior - 1.5 * on_plan
    if mech.threshold_cents > 0:
        above = p.bal[rows] >= mech.threshold_cents
        z[CH["call"]] = np.where(above, THRESHOLD_CALL_LOGIT[0], THRESHOLD_CALL_LOGIT[1])
    z[CH["sms"]] = -3.0 - 0.015 * (age - 45.0) - 1.0 * on_plan
    z[CH["email"]] = -3.2 - 1.0 * on_plan
    z[CH["letter"]] = -4.6 + 0.5 * senior + 0.002 * debt_age
    z[CH["portal"]] = -3.2 - 1.0 * on_plan
    e = np.exp(z, out=z)  # logits stay far below overflow: balances are bounded
    e *= allowed_actions(p, d, rows)
    e /= e.sum(axis=0)
    return e


def outcome_effect(p: Pool, rows: np.ndarray, channel: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """The logit lift that a contact with this outcome adds (zero for failed, returned, missed contacts)."""
    eff = np.zeros(len(rows))
    for ch, out, col in (
        ("call", "right_party", p.eff_rp),
        ("call", "voicemail", p.eff_vm),
        ("sms", "delivered", p.eff_sms),
        ("email", "delivered", p.eff_email),
        ("letter", "sent", p.eff_letter),
        ("portal", "sent", p.eff_portal),
    ):
        m = (channel == CH[ch]) & (outcome == OUT[out])
        eff[m] = col[rows[m]]
    return eff


def draw_outcomes(p: Pool, rows: np.ndarray, channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Outcome codes of contacts on `rows` through `channel`."""
    u = rng.random(len(rows))
    out = np.full(len(rows), OUT["sent"], np.int8)
    reach = p.reach[rows]
    wrong = reach + (1 - reach) * P_WRONG_NUMBER
    vm = wrong + (1 - reach) * (1 - P_WRONG_NUMBER) * P_VOICEMAIL
    call = np.select(
        [u < reach, u < wrong, u < vm],
        [OUT["right_party"], OUT["wrong_number"], OUT["voicemail"]],
        OUT["no_answer"],
    )
    out = np.where(channel == CH["call"], call, out)
    out = np.where(channel == CH["sms"], np.where(u < P_SMS_FAIL, OUT["failed"], OUT["delivered"]), out)
    out = np.where(channel == CH["email"], np.where(u < P_EMAIL_FAIL, OUT["failed"], OUT["delivered"]), out)
    out = np.where((channel == CH["letter"]) & (u < p.p_return[rows]), OUT["returned"], out)
    return out.astype(np.int8)


def _contact(
    p: Pool,
    d: int,
    rows: np.ndarray,
    channel: np.ndarray,
    outcome: np.ndarray,
    prop: np.ndarray,
    log: Log | None,
) -> None:
    p.lift[rows] += outcome_effect(p, rows, channel, outcome)
    rp = rows[(channel == CH["call"]) & (outcome == OUT["right_party"])]
    p.last_rp[rp] = d
    if log:
        log.contact(p.acc[rows], d, channel, outcome, prop)


def hazard(p: Pool, d: int, mech: Mechanics = DEFAULT_MECHANICS) -> np.ndarray:
    """Daily probability of a patient payment on day d (the one hazard used by simulation and truth)."""
    pays = is_open(p, d) & (d > p.payblock_until)
    debt_age = (d - p.adj_day - BILL_LAG).astype(np.float64)
    log_bal = np.log(np.maximum(p.bal, 1) / 100.0)
    z = (
        p.base_logit
        + HAZ_BALANCE * (log_bal - np.log(300.0))
        + HAZ_OVER_MEANS * sigmoid(2.0 * (log_bal - p.means))
        + HAZ_EARLY_DECAY * np.minimum(debt_age, 90.0)
        + HAZ_LATE_DECAY * np.maximum(debt_age - 90.0, 0.0)
        + HAZ_CEASE * p.cc_on
        + p.lift
    )
    h = np.where(pays & (p.plan_inst == 0), sigmoid(z), 0.0)
    due = pays & (p.plan_inst > 0) & (p.plan_next == d)
    return np.where(due, 1.0 - p.p_miss, h) * mech.hazard_scale(d)


def step(
    p: Pool,
    d: int,
    rng: np.random.Generator | None,
    log: Log | None,
    *,
    policy: bool = True,
    forced: tuple[str, str] | None = None,
    mech: Mechanics = DEFAULT_MECHANICS,
    deciding: Callable[[Pool, int, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Advance the pool to day d and return the day's payment hazard.

    policy=True: statements every 30 days after billing and the historic policy (needs rng).
    forced=(channel, outcome): instead, that contact happens today wherever the rules allow it.
    deciding: replaces the historic policy's action probabilities (same signature as `policy_probs`).
    """
    p.lift *= DECAY
    apply_events(p, d, log)
    can = contactable(p, d)
    if policy:
        stmt = can & ((d - p.adj_day - BILL_LAG) % STATEMENT_EVERY == 0)
        rows = np.flatnonzero(stmt)
        if len(rows):
            ch = np.full(len(rows), CH["letter"], np.int8)
            _contact(p, d, rows, ch, draw_outcomes(p, rows, ch, rng), np.ones(len(rows)), log)
        rows = np.flatnonzero(can & ~stmt)
        if len(rows):
            probs = deciding(p, d, rows) if deciding is not None else policy_probs(p, d, rows, mech)
            u = rng.random(len(rows))
            act, cum = np.zeros(len(rows), np.int64), np.zeros(len(rows))
            for k in range(len(ACTIONS) - 1):  # inverse CDF: count the cumulative bounds u passes
                cum += probs[k]
                act += u >= cum
            cols = np.arange(len(rows))
            act = np.where(probs[act, cols] > 0, act, 0)  # guard against rounding at the top
            hit = act > 0
            rows, act = rows[hit], act[hit]
            prop = probs[act, cols[hit]]
            _contact(p, d, rows, act, draw_outcomes(p, rows, act, rng), prop, log)
    elif forced is not None:
        ch = CH[forced[0]]
        rows = np.flatnonzero(can)
        rows = rows[allowed_actions(p, d, rows)[ch]]
        n = len(rows)
        _contact(p, d, rows, np.full(n, ch, np.int8), np.full(n, OUT[forced[1]], np.int8), np.ones(n), None)
    return hazard(p, d, mech)


def new_instalment(bal: np.ndarray) -> np.ndarray:
    """Monthly instalment of a new plan: about $100 a month, 3 to 24 months."""
    months = np.clip(np.ceil(bal / 10000.0), 3, 24)
    return np.maximum(2500, np.ceil(bal / months)).astype(np.int64)


def _instalment_amount(p: Pool) -> np.ndarray:
    amt = np.minimum(p.plan_inst, p.bal)
    return np.where(p.bal - amt < MIN_OPEN_CENTS, p.bal, amt)


def payment_mix(p: Pool) -> tuple[np.ndarray, np.ndarray]:
    """P(pay in full | pay) and P(enter a plan | pay); the rest pay a partial amount."""
    p_full = sigmoid(p.full_logit - 0.9 * np.log(np.maximum(p.bal, 1) / 40000.0))
    p_plan = (1 - p_full) * P_PLAN * (p.bal >= 20000)
    return p_full, p_plan


def expected_amount(p: Pool, d: int) -> np.ndarray:
    """Expected cents of a payment on day d, given one happens (the same mix `apply_payments` draws from)."""
    bal = p.bal.astype(np.float64)
    p_full, p_plan = payment_mix(p)
    # partial: share f ~ U(lo, hi) of the balance, or all of it when less than $5 would remain
    cut = np.clip(1 - MIN_OPEN_CENTS / np.maximum(bal, 1), PARTIAL_LO, PARTIAL_HI)
    share = ((cut**2 - PARTIAL_LO**2) / 2 + (PARTIAL_HI - cut)) / (PARTIAL_HI - PARTIAL_LO)
    plan_first = np.minimum(new_instalment(bal), bal)
    regular = (
        p_full * (bal + P_OVERPAY * OVERPAY_MEAN_CENTS) + p_plan * plan_first + (1 - p_full - p_plan) * share * bal
    )
    due = (p.plan_inst > 0) & (p.plan_next == d)
    return np.where(due, _instalment_amount(p), regular)


def apply_payments(p: Pool, d: int, pay: np.ndarray, rng: np.random.Generator | None, log: Log | None) -> None:
    """Post day d's payments (`pay` mask) and move payment plans on; a due instalment not paid is a miss."""
    due = (p.plan_inst > 0) & (p.plan_next == d)
    paying_due = np.flatnonzero(due & pay & (p.bal >= MIN_OPEN_CENTS))
    missed = np.flatnonzero(due & ~pay & is_open(p, d) & (d > p.payblock_until))
    p.plan_next[due] += PLAN_EVERY
    if len(paying_due):
        amt = _instalment_amount(p)[paying_due]
        _pay(p, paying_due, amt, d, log)
        p.plan_miss[paying_due] = 0
    if len(missed):
        p.plan_miss[missed] += 1
        broken = missed[p.plan_miss[missed] >= PLAN_MAX_MISSES]
        p.plan_inst[broken] = 0
    rows = np.flatnonzero(pay & ~due)
    if not len(rows):
        return
    sub = p.take(rows)
    p_full, p_plan = payment_mix(sub)
    u = rng.random(len(rows))
    full = u < p_full
    plan = ~full & (u < p_full + p_plan)
    bal = sub.bal
    share = rng.uniform(PARTIAL_LO, PARTIAL_HI, len(rows))
    part = np.round(bal * share).astype(np.int64)
    part = np.where(bal - part < MIN_OPEN_CENTS, bal, part)
    inst = new_instalment(bal)
    amt = np.where(full, bal, np.where(plan, np.minimum(inst, bal), part))
    over = full & (rng.random(len(rows)) < P_OVERPAY)
    extra = rng.integers(1, 21, len(rows)) * 100
    delay = rng.integers(10, 31, len(rows))
    amt = amt + np.where(over, extra, 0)
    _pay(p, rows, amt, d, log)
    o = rows[over]
    p.refund_day[o] = d + delay[over]
    p.refund_cents[o] = extra[over]
    pl = rows[plan]  # plans need a balance of $200+, so an instalment never leaves less than $5
    p.plan_inst[pl] = inst[plan]
    p.plan_next[pl] = d + PLAN_EVERY
    p.plan_miss[pl] = 0


def _pay(p: Pool, rows: np.ndarray, cents: np.ndarray, d: int, log: Log | None) -> None:
    p.bal[rows] -= cents
    p.last_pay[rows] = d
    if log:
        log.post(p.acc[rows], d, "patient_payment", -cents)


def simulate_day(
    p: Pool,
    d: int,
    rng: np.random.Generator,
    log: Log,
    mech: Mechanics = DEFAULT_MECHANICS,
    deciding: Callable[[Pool, int, np.ndarray], np.ndarray] | None = None,
) -> None:
    """One day of the book: step (with another deciding policy if given), then draw payments from the hazard."""
    h = step(p, d, rng, log, mech=mech, deciding=deciding)
    apply_payments(p, d, rng.random(len(p)) < h, rng, log)


def open_at(p: Pool, t: int) -> np.ndarray:
    """Accounts open at the end of day t by the ledger definition: charged by t, balance >= $5, and
    self-pay or adjudicated by t."""
    return (p.svc_day <= t) & (p.bal >= MIN_OPEN_CENTS) & (p.self_pay | (p.adj_day <= t))


FORCED_CONTACTS: tuple[tuple[str, str], ...] = (
    ("call", "right_party"),
    ("call", "voicemail"),
    ("sms", "delivered"),
    ("email", "delivered"),
    ("letter", "sent"),
    ("portal", "sent"),
)


def _survival_forced(
    p: Pool, t: int, horizon: int, forced: tuple[str, str] | None, mech: Mechanics = DEFAULT_MECHANICS
) -> np.ndarray:
    """P(no payment in (t, t+horizon]) when only `forced` happens on t+1 (closed form, no sampling)."""
    q = p.take(np.arange(len(p)))
    surv = np.ones(len(q))
    for k in range(1, horizon + 1):
        h = step(q, t + k, None, None, policy=False, forced=forced if k == 1 else None, mech=mech)
        surv *= 1 - h
        apply_payments(q, t + k, np.zeros(len(q), bool), None, None)
    return surv


def _rollout_policy(
    p: Pool, t: int, horizon: int, n_paths: int, rng: np.random.Generator, mech: Mechanics = DEFAULT_MECHANICS
) -> tuple[np.ndarray, np.ndarray]:
    """Rao-Blackwellised P(payment in (t, t+horizon]) and E[first payment | one] under the historic policy:
    contact paths are sampled with payments held off, and ∏(1-h) is averaged over the paths."""
    n = len(p)
    surv_sum, amt_sum = np.zeros(n), np.zeros(n)
    per_chunk = max(1, min(n_paths, 1_000_000 // max(n, 1)))
    done = 0
    while done < n_paths:
        k = min(per_chunk, n_paths - done)
        q = p.take(np.tile(np.arange(n), k))
        surv, amt = np.ones(len(q)), np.zeros(len(q))
        for j in range(1, horizon + 1):
            h = step(q, t + j, rng, None, mech=mech)
            amt += surv * h * expected_amount(q, t + j)
            surv *= 1 - h
            apply_payments(q, t + j, np.zeros(len(q), bool), None, None)
        surv_sum += surv.reshape(k, n).sum(axis=0)
        amt_sum += amt.reshape(k, n).sum(axis=0)
        done += k
    p_pay = 1 - surv_sum / n_paths
    expected = np.where(p_pay > 0, amt_sum / n_paths / np.maximum(p_pay, 1e-300), 0.0)
    return p_pay, expected


def truth_at(
    p: Pool, t: int, rng: np.random.Generator, n_paths: int = 24, mech: Mechanics = DEFAULT_MECHANICS
) -> dict[str, np.ndarray]:
    """The true payment probabilities of the accounts open at the end of day t (see module docstring).

    Columns: acc, balance (cents), p_pay_30d, expected_payment (cents), p_pay_14d_<action> for every action, and
    policy_<action>: the historic policy's probability of each action on t + 1 (a statement day's letter is
    certain; an account it cannot contact gets "none"), so the logged policy's true value can be computed.
    """
    q = p.take(open_at(p, t))
    out: dict[str, np.ndarray] = {"acc": q.acc, "balance": q.bal.copy()}
    out["p_pay_30d"], out["expected_payment"] = _rollout_policy(q, t, 30, n_paths, rng, mech)
    s_none = _survival_forced(q, t, 14, None, mech)
    s = {sc: _survival_forced(q, t, 14, sc, mech) for sc in FORCED_CONTACTS}
    p_vm = (1 - q.reach) * (1 - P_WRONG_NUMBER) * P_VOICEMAIL
    # outcome-weighted survival, written as none + Σ P(outcome)·(S_outcome - S_none): exact where no effect
    gain = {sc: s[sc] - s_none for sc in FORCED_CONTACTS}
    s_call = s_none + q.reach * gain[("call", "right_party")] + p_vm * gain[("call", "voicemail")]
    s_sms = s_none + (1 - P_SMS_FAIL) * gain[("sms", "delivered")]
    s_email = s_none + (1 - P_EMAIL_FAIL) * gain[("email", "delivered")]
    s_letter = s_none + (1 - q.p_return) * gain[("letter", "sent")]
    for name, surv in (
        ("none", s_none),
        ("call", s_call),
        ("sms", s_sms),
        ("email", s_email),
        ("letter", s_letter),
        ("portal", s[("portal", "sent")]),
    ):
        out[f"p_pay_14d_{name}"] = np.clip(1 - surv, 0.0, 1.0)
    out |= {f"policy_{a}": v for a, v in zip(ACTIONS, historic_policy_next_day(q, t, mech), strict=True)}
    return out


def historic_policy_next_day(p: Pool, t: int, mech: Mechanics = DEFAULT_MECHANICS) -> np.ndarray:
    """(ACTIONS, n) probabilities of the historic policy's action on day t + 1, from the state at the end of t."""
    q = p.take(np.arange(len(p)))
    q.lift *= DECAY
    apply_events(q, t + 1, None)
    d = t + 1
    can = contactable(q, d)
    stmt = can & ((d - q.adj_day - BILL_LAG) % STATEMENT_EVERY == 0)
    out = np.zeros((len(ACTIONS), len(q)))
    out[CH["none"]] = 1.0
    out[:, stmt] = 0.0
    out[CH["letter"], stmt] = 1.0
    rows = np.flatnonzero(can & ~stmt)
    if len(rows):
        out[:, rows] = policy_probs(q, d, rows, mech)
    return out
