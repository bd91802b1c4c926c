"""Server rules on a worker clock: a plain heap event loop of one trajectory (a test oracle).

Independent of the engine (``asyncjax.servers`` on ``asyncjax.delays.workers``),
which the tests compare against it event by event. NumPy and the standard
library only: no JAX, nothing else from asyncjax, float64 throughout.

The contract, literally (the engine's event log must equal this loop's):

* ``n`` workers ``i = 0 … n−1``. Compute times are given, not drawn: ``first[i]``
  is the time of worker i's first job; the job the event's own worker starts
  after event ``e`` (its arrival or time-out) takes ``draws[e, 0]``, and the job
  a worker ``j`` starts when the rule stops and restarts it (a stop, or a new
  round for a worker that did not just arrive) for the ``r``-th time takes
  ``draws[r, 1 + j]``: ``r = 0, 1, …`` counts worker ``j``'s restarts by the
  rule alone, so row ``r`` of column ``1 + j`` is read once. ``draws`` may
  instead be a function ``draws(c, j, restart)`` (with ``events=E``) giving the
  time of a job that worker ``j`` starts: after its own event ``c``
  (``restart`` False) or at its ``c``-th restart by the rule (``restart``
  True); the array form is ``draws(e, j, False) = arr[e, 0]`` and
  ``draws(r, j, True) = arr[r, 1 + j]``. A job of drawn time ``c`` started at
  ``s`` ends at ``s + c`` (one float64 addition). With time-outs, a job whose
  ``c`` exceeds ``timeouts[i]`` (strictly) is abandoned: it ends at ``s +
  timeouts[i]`` as a *time-out* event instead of an arrival.
* At time 0 every worker starts a job reading version 0 (the server's count of
  applied updates ``k = 0``).
* Events are processed in order of end time, ties to the lower worker index
  (heap keys ``(time, worker)``; a stopped job's entry is dropped unseen). Event
  ``e = 0, 1, …``; the loop stops after ``E`` events.
* At event ``e`` (worker ``w``, time ``t``) the staleness is ``τ = k − v_w``,
  ``v_w`` the version ``w`` read, in applied updates.

  - A time-out: not an arrival (``applied`` False, weight 0, no step).
  - ``"asgd"``: accept, step now.
  - ``"ringmaster"``: accept iff ``τ < R``; step iff accepted. With ``stops``,
    after the step every *other* busy worker ``j`` with ``k − v_j ≥ R`` (``k``
    after the step) is stopped and restarts reading ``k`` at ``t`` with
    its next restart's time; its partial work is lost.
  - ``"rennala"``: accept iff ``τ == 0``; an accepted gradient increments the
    round's count; step iff the count reaches ``B`` (the count then resets).
    With ``stops``, at a step every other busy worker restarts reading the new
    version with its next restart's time.
  - ``"msync"``: every worker computes at the current point, so ``τ == 0`` and
    every arrival is accepted; count += 1; when the count reaches ``B``: step,
    and *all* workers (busy or idle) restart reading the new version, the
    event's worker with ``draws[e, 0]``, the others with their next restart's;
    otherwise the event's worker goes idle (no job) until the round ends.
  - ``"fedbuff"``: accept every arrival with weight ``s(τ)`` (default
    ``1/√(1 + τ)``; a constant; or a function of τ); count += 1; step iff the
    count reaches ``B``.
  - ``"ia2sgd"``: accept, step now.
  - ``"ringleader"``: as ``"ringmaster"`` (accept iff ``τ < R``, step iff
    accepted, the same stops).
  - ``"malenia"``: accept iff ``τ == 0``; worker ``w`` is then *in the round*;
    step iff accepted and every worker ``0 … n−1`` is in the round (the round
    then empties). With ``stops``, at a step every other busy worker restarts
    as for rennala.

  Then the event's own worker (unless msync left it idle) restarts reading
  version ``k`` (after this event's step, if any) at ``t`` with ``draws[e, 0]``;
  after a time-out too.
* Iterates (optional, with ``grad``): each worker holds a snapshot of the
  iterate it read; an accepted arrival calls ``grad(snapshot, e)`` once (a
  discarded or timed-out one never calls it; with ``worker_grad=True`` the
  call is ``grad(snapshot, e, w)``, the gradient of worker ``w``'s own data)
  and adds ``weight · g`` to the accumulator, in arrival order, starting from
  zeros; a step takes ``g_avg = accumulator / B`` for rennala, msync and
  fedbuff, and ``g_avg = g`` (the arrival's own gradient) for asgd and
  ringmaster, then ``x ← update(x, g_avg)`` (default ``x − lr · g_avg``) and
  clears the accumulator. The table rules keep one row per worker, zeros at
  the start: ia2sgd and ringleader set row ``w`` to ``g`` and step with
  ``g_avg = (Σ_j row_j) / n``; malenia adds ``g`` to row ``w``'s sum and count
  and steps with ``g_avg = (1/n) Σ_j sum_j / count_j``, then empties every row.

``batch`` (B) is used by rennala, msync and fedbuff, ``delay_threshold`` (R) by
ringmaster and ringleader, ``stops`` by ringmaster, ringleader, rennala and
malenia, ``weight`` by fedbuff; the other rules ignore them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import numpy as np

RULES = ("asgd", "fedbuff", "ia2sgd", "malenia", "msync", "rennala", "ringleader", "ringmaster")
_THRESHOLD = ("ringmaster", "ringleader")  # accept iff τ < R
_TABLE = ("ia2sgd", "ringleader")  # each worker's latest gradient
_APPLY_NOW = ("asgd", "ia2sgd", "ringleader", "ringmaster")  # a step at every accepted arrival


def simulate_server(
    rule: str,
    first: Any,
    draws: Any,
    *,
    events: int | None = None,
    batch: int = 1,
    delay_threshold: int = 1,
    stops: bool = True,
    weight: float | Callable[[int], float] | None = None,
    timeouts: Any = None,
    grad: Callable[..., Any] | None = None,
    worker_grad: bool = False,
    x0: Any = None,
    lr: float | None = None,
    update: Callable[[np.ndarray, np.ndarray], Any] | None = None,
) -> dict[str, np.ndarray]:
    """The event log of one trajectory under a server rule (see the module docstring).

    Args:
      rule: one of `RULES`: ``"asgd"``, ``"ringmaster"``, ``"rennala"``, ``"msync"``,
        ``"fedbuff"``, ``"ia2sgd"``, ``"malenia"`` or ``"ringleader"``.
      first: (n,) time of each worker's first job, ≥ 0.
      draws: (E, n + 1) job times, ≥ 0: row e of column 0 for the event's own
        worker after event e, row r of column 1 + j for worker j's r-th restart
        by the rule; or a function ``draws(c, j, restart) -> float`` together
        with ``events``.
      events: E, only with a function ``draws``.
      batch: B ≥ 1 (rennala, msync, fedbuff); msync needs B ≤ n.
      delay_threshold: R ≥ 1 (ringmaster).
      stops: stop and restart workers as the rule says (ringmaster, rennala).
      weight: fedbuff's s(τ): None for 1/√(1 + τ), a number, or a function of τ.
      timeouts: (n,) per-worker time-outs, ≥ 0 (default all inf).
      grad: ``grad(point, e) -> (d,)``, the gradient at a worker's snapshot.
      worker_grad: call ``grad(point, e, w)`` instead: worker w's own gradient.
      x0: (d,) start, needed with ``grad``.
      lr: step of the default update ``x − lr · g_avg``.
      update: ``update(x, g_avg) -> x`` instead of plain SGD.

    Returns:
      A dict of (E,) arrays: ``time`` (float64), ``worker`` (int64),
      ``staleness`` (int64, τ before this event's step), ``applied`` (bool,
      accepted: the gradient went or will go into a step), ``timed_out``
      (bool), ``weight`` (float64, 0 if not accepted, 1/B not included),
      ``step`` (bool), ``updates`` (int64, k after the event); with ``grad``
      also ``x`` (E, d), the server's iterate after each event.
    """
    if rule not in RULES:
        raise ValueError(f"unknown server rule {rule!r}; known: {', '.join(RULES)}")
    first = _times("first", first, allow_inf=False)
    if first.ndim != 1 or first.size < 1:
        raise ValueError(f"first must be a non-empty 1-D array, got shape {first.shape}")
    n = first.size
    if callable(draws):
        if events is None or isinstance(events, bool) or not isinstance(events, int | np.integer):
            raise ValueError(f"a function for draws needs events=E (an integer), got {events!r}")
        if events < 0:
            raise ValueError(f"events must be >= 0, got {events}")
        num_events, duration = int(events), draws
    else:
        table = _times("draws", draws, allow_inf=False)
        if table.ndim != 2 or table.shape[1] != n + 1:
            raise ValueError(
                f"draws must have shape (E, {n + 1}) for {n} workers, got {table.shape}"
            )
        if events is not None and events != table.shape[0]:
            raise ValueError(f"events={events} disagrees with draws' {table.shape[0]} rows")
        num_events, duration = table.shape[0], None
    batch = _whole("batch", batch)
    if rule == "msync" and batch > n:
        raise ValueError(f"msync needs batch <= workers ({n}), got {batch}")
    threshold = _whole("delay_threshold", delay_threshold)
    if timeouts is None:
        timeouts = np.full(n, np.inf)
    else:
        timeouts = _times("timeouts", timeouts, allow_inf=True)
        if timeouts.shape != (n,):
            raise ValueError(f"timeouts must have shape ({n},), got {timeouts.shape}")
    if weight is None:
        stale_weight = lambda tau: 1.0 / math.sqrt(1.0 + tau)
    elif callable(weight):
        stale_weight = weight
    elif isinstance(weight, int | float | np.integer | np.floating) and not isinstance(
        weight, bool
    ):
        if not math.isfinite(weight):
            raise ValueError(f"weight must be finite, got {weight!r}")
        stale_weight = lambda tau, c=float(weight): c
    else:
        raise ValueError(f"weight must be None, a number or a function of τ, got {weight!r}")
    if grad is not None:
        if x0 is None:
            raise ValueError("grad needs x0, the (d,) start")
        if update is None and lr is None:
            raise ValueError("grad needs lr (plain SGD) or update(x, g_avg)")
        x = np.array(x0, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"x0 must be 1-D, got shape {x.shape}")
        if update is None:
            update = lambda x, g: x - lr * g

    def job_time(counter: int, j: int, restart: bool) -> float:
        # worker j's own job after event `counter`, or its `counter`-th restart by the rule
        if duration is None:
            return float(table[counter, 1 + j] if restart else table[counter, 0])
        c = float(duration(counter, j, restart))
        if not c >= 0.0 or math.isinf(c):
            raise ValueError(f"draws({counter}, {j}, {restart}) must be finite and >= 0, got {c!r}")
        return c

    version = 0  # k: applied updates
    count = 0  # accepted gradients in the current round (rennala, msync, fedbuff)
    # per worker j (plain lists: this loop does scalar work)
    read = [0] * n  # v_j: the version worker j read
    busy = [True] * n  # False only for the event's worker and msync's idle ones
    job = [0] * n  # id of worker j's live job; older heap entries are dead
    will_time_out = [False] * n
    restarts = [0] * n  # r_j: worker j's restarts by the rule so far
    limit = [float(c) for c in timeouts]
    heap: list[tuple[float, int, int]] = []  # (end time, worker, job id)
    if grad is not None:
        snap = np.repeat(x[None], n, axis=0)  # the point each worker read
        acc = np.zeros_like(x)
        rows = np.zeros((n, x.size))  # the table rules: one row per worker
        row_count = np.zeros(n)
    in_round = [False] * n  # malenia: workers with an accepted gradient in this round

    def start(j: int, t: float, c: float) -> None:
        # worker j starts a job at time t, reading the current version and iterate
        job[j] += 1
        busy[j] = True
        read[j] = version
        will_time_out[j] = c > limit[j]
        heapq.heappush(heap, (t + (limit[j] if will_time_out[j] else c), j, job[j]))
        if grad is not None:
            snap[j] = x

    for j in range(n):
        start(j, 0.0, float(first[j]))

    out = {
        "time": np.empty(num_events, np.float64),
        "worker": np.empty(num_events, np.int64),
        "staleness": np.empty(num_events, np.int64),
        "applied": np.zeros(num_events, bool),
        "timed_out": np.zeros(num_events, bool),
        "weight": np.zeros(num_events, np.float64),
        "step": np.zeros(num_events, bool),
        "updates": np.empty(num_events, np.int64),
    }
    if grad is not None:
        out["x"] = np.empty((num_events, x.size), np.float64)

    for e in range(num_events):
        while True:
            t, w, jid = heapq.heappop(heap)
            if jid == job[w]:
                break
        busy[w] = False
        tau = version - read[w]
        timed_out = will_time_out[w]
        accepted, step, w_weight = False, False, 0.0
        if not timed_out:
            if rule in ("asgd", "ia2sgd"):
                accepted, w_weight = True, 1.0
            elif rule in _THRESHOLD:
                accepted = tau < threshold
                w_weight = 1.0 if accepted else 0.0
            elif rule in ("rennala", "msync", "malenia"):
                accepted = tau == 0
                w_weight = 1.0 if accepted else 0.0
            else:  # fedbuff
                accepted = True
                w_weight = float(stale_weight(tau))
                if not math.isfinite(w_weight):
                    raise ValueError(f"weight({tau}) must be finite, got {w_weight!r}")
        if accepted:
            if rule in _APPLY_NOW:
                step = True
            elif rule == "malenia":
                in_round[w] = True
                step = all(in_round)
            else:
                count += 1
                step = count == batch
            if grad is not None:
                point = snap[w].copy()
                g = grad(point, e, w) if worker_grad else grad(point, e)
                g = np.asarray(g, dtype=np.float64)
                if g.shape != x.shape:
                    raise ValueError(f"grad returned shape {g.shape}, expected {x.shape}")
                if rule in ("asgd", "ringmaster"):
                    g_avg = g
                elif rule in _TABLE:
                    rows[w] = g
                    g_avg = rows.sum(axis=0) / n
                elif rule == "malenia":
                    rows[w] += g
                    row_count[w] += 1
                    if step:
                        g_avg = (rows / row_count[:, None]).sum(axis=0) / n
                else:
                    acc = acc + w_weight * g
                    if step:
                        g_avg = acc / batch
            if step:
                version += 1
                count = 0
                in_round = [False] * n
                if grad is not None:
                    x = np.asarray(update(x, g_avg), dtype=np.float64)
                    acc = np.zeros_like(x)
                    if rule == "malenia":
                        rows[:] = 0.0
                        row_count[:] = 0.0

        # who restarts at this event, reading the version after its step
        others: list[int] = []
        if step and stops and rule in _THRESHOLD:
            others = [j for j in range(n) if busy[j] and version - read[j] >= threshold]
        elif step and stops and rule in ("rennala", "malenia"):
            others = [j for j in range(n) if busy[j]]
        elif step and rule == "msync":
            others = list(range(n))
        for j in others:
            if j != w:
                start(j, t, job_time(restarts[j], j, True))
                restarts[j] += 1
        if not (rule == "msync" and accepted and not step):  # an msync finisher waits idle
            start(w, t, job_time(e, w, False))

        out["time"][e] = t
        out["worker"][e] = w
        out["staleness"][e] = tau
        out["applied"][e] = accepted
        out["timed_out"][e] = timed_out
        out["weight"][e] = w_weight
        out["step"][e] = step
        out["updates"][e] = version
        if grad is not None:
            out["x"][e] = x
    return out


def _accept(rule: str, tau: int, threshold: int, stale_weight: Callable) -> tuple[bool, float]:
    """Whether a rule accepts an arrival of staleness τ, and its weight."""
    if rule in ("asgd", "ia2sgd"):
        return True, 1.0
    if rule in _THRESHOLD:
        return tau < threshold, float(tau < threshold)
    if rule in ("rennala", "msync", "malenia"):
        return tau == 0, float(tau == 0)
    w_weight = float(stale_weight(tau))  # fedbuff
    if not math.isfinite(w_weight):
        raise ValueError(f"weight({tau}) must be finite, got {w_weight!r}")
    return True, w_weight


def _stale_weight(weight: Any) -> Callable[[int], float]:
    if weight is None:
        return lambda tau: 1.0 / math.sqrt(1.0 + tau)
    if callable(weight):
        return weight
    if isinstance(weight, int | float | np.integer | np.floating) and not isinstance(weight, bool):
        if not math.isfinite(weight):
            raise ValueError(f"weight must be finite, got {weight!r}")
        return lambda tau, c=float(weight): c
    raise ValueError(f"weight must be None, a number or a function of τ, got {weight!r}")


def simulate_conditions(
    rule: str,
    workers: int,
    compute: Callable[[int, int], float],
    *,
    events: int,
    download: Callable[[int, int], float] | None = None,
    upload: Callable[[int, int], float] | None = None,
    assign: Callable[[int], int] | None = None,
    up: Callable[[int, int], float] | None = None,
    down: Callable[[int, int], float] | None = None,
    outage_mode: str = "paused",
    timeouts: Any = None,
    batch: int = 1,
    delay_threshold: int = 1,
    stops: bool = True,
    weight: float | Callable[[int], float] | None = None,
) -> dict[str, np.ndarray]:
    """The event log of one trajectory with the worker's conditions (a heap event loop).

    The rules are `simulate_server`'s; what differs is who works when:

    * Worker j's c-th job (c = 0, 1, … over all jobs it starts, first jobs at
      time 0 included) takes ``download(j, c) + min(compute(j, c), timeouts[j])
      + upload(j, c)`` of working time, no upload when it times out
      (``compute > timeout``, strictly); unset parts take 0.
    * Jobs: at time 0 worker j holds job j (version 0). After event e the
      server hands out one job with the current version (after this event's
      step) to ``assign(e)`` (None: the event's worker). A worker works its
      jobs first in, first out; one that holds none is idle. A job keeps the
      version it was handed out with. With ``assign``, rules that stop or idle
      workers are refused.
    * Without ``assign``: the event's worker restarts (reading the current
      version), other workers restart as `simulate_server` says (stops, new
      rounds); msync's finisher idles until its round ends.
    * Outages (``up`` and ``down``: the length of worker j's r-th up and down
      period, r = 0, 1, …): each worker is up from 0 for ``up(j, 0)``, then
      down for ``down(j, 0)``, up for ``up(j, 1)``, … A job works only while
      its worker is up. ``"paused"``: it resumes with the work it had left;
      ``"lost"``: if it was running when its worker went down, it is redone in
      full (the worker's next job number, the same version) when it comes back.
      A job started while its worker is down waits for it to come up.
    * Order: the earliest end of a job or of a period; at equal times jobs end
      before periods do, and lower workers first.

    Returns:
      `simulate_server`'s (E,) arrays (no iterates) and ``assigned``: the
      worker given the job handed out at each event.
    """
    if rule not in RULES:
        raise ValueError(f"unknown server rule {rule!r}; known: {', '.join(RULES)}")
    n = _whole("workers", workers)
    num_events = _whole("events", events)
    stopping = (*_THRESHOLD, "rennala", "malenia")
    if assign is not None and (rule == "msync" or (stops and rule in stopping)):
        raise ValueError(f"{rule} with stops or idle workers needs one job per worker")
    if (up is None) != (down is None):
        raise ValueError("outages need both up and down")
    if outage_mode not in ("paused", "lost"):
        raise ValueError(f"outage_mode must be 'paused' or 'lost', got {outage_mode!r}")
    limit = np.full(n, np.inf) if timeouts is None else _times("timeouts", timeouts, allow_inf=True)
    stale_weight = _stale_weight(weight)
    threshold = _whole("delay_threshold", delay_threshold)
    batch = _whole("batch", batch)

    def part(fn: Any, j: int, c: int) -> float:
        if fn is None:
            return 0.0
        v = float(fn(j, c))
        if not v >= 0.0 or math.isinf(v):
            raise ValueError(f"a time must be finite and >= 0, got {v!r} (worker {j}, job {c})")
        return v

    heap: list[tuple[float, int, int, int]] = []  # (time, 0 job end | 1 switch, worker, id)
    live = [0] * n  # id of worker j's live heap entry; older ones are dead
    is_up = [True] * n
    periods = [0] * n  # switches so far
    jobs = [0] * n  # jobs started
    left = [0.0] * n  # work left on the current job (while down or paused)
    times_out = [False] * n
    lost = [False] * n
    running: list[dict | None] = [None] * n  # the job each worker works on
    queue: list[list[dict]] = [[] for _ in range(n)]
    version = count = 0
    in_round = [False] * n  # malenia: workers with an accepted gradient in this round

    def push_end(j: int, t: float) -> None:
        live[j] += 1
        heapq.heappush(heap, (t + left[j], 0, j, live[j]))

    def begin(j: int, t: float, job: dict) -> None:
        # worker j starts `job`: draws its next job time; works it only while up
        c = jobs[j]
        jobs[j] += 1
        comp = part(compute, j, c)
        times_out[j] = comp > limit[j]
        work = part(download, j, c) + (limit[j] if times_out[j] else comp)
        left[j] = work + (0.0 if times_out[j] else part(upload, j, c))
        running[j], lost[j] = job, False
        if is_up[j]:
            push_end(j, t)
        else:
            live[j] += 1  # no end while down

    for j in range(n):
        begin(j, 0.0, {"version": 0})
        if up is not None:
            heapq.heappush(heap, (part(up, j, 0), 1, j, -1))

    out = {
        "time": np.empty(num_events, np.float64),
        "worker": np.empty(num_events, np.int64),
        "staleness": np.empty(num_events, np.int64),
        "applied": np.zeros(num_events, bool),
        "timed_out": np.zeros(num_events, bool),
        "weight": np.zeros(num_events, np.float64),
        "step": np.zeros(num_events, bool),
        "updates": np.empty(num_events, np.int64),
        "assigned": np.empty(num_events, np.int64),
    }
    e = 0
    while e < num_events:
        t, kind, w, jid = heapq.heappop(heap)
        if kind == 1:  # a period ends
            if is_up[w]:  # going down
                if running[w] is not None:
                    if outage_mode == "paused":
                        found = [h for h in heap if h[1] == 0 and h[2] == w and h[3] == live[w]]
                        left[w] = found[0][0] - t
                    else:
                        lost[w] = True
                    live[w] += 1
                heapq.heappush(heap, (t + part(down, w, periods[w] // 2), 1, w, -1))
                is_up[w] = False
            else:  # coming back
                is_up[w] = True
                if running[w] is not None:
                    if lost[w]:
                        begin(w, t, running[w])
                    else:
                        push_end(w, t)
                heapq.heappush(heap, (t + part(up, w, (periods[w] + 1) // 2), 1, w, -1))
            periods[w] += 1
            continue
        if jid != live[w]:
            continue
        job, running[w] = running[w], None
        tau = version - job["version"]
        timed_out = times_out[w]
        accepted, step, w_weight = False, False, 0.0
        if not timed_out:
            accepted, w_weight = _accept(rule, tau, threshold, stale_weight)
        if accepted:
            if rule in _APPLY_NOW:
                step = True
            elif rule == "malenia":
                in_round[w] = True
                step = all(in_round)
            else:
                count += 1
                step = count == batch
            if step:
                version += 1
                count = 0
                in_round = [False] * n
        if assign is None:
            a = w
            others: list[int] = []
            if step and stops and rule in _THRESHOLD:
                others = [
                    j
                    for j in range(n)
                    if running[j] and version - running[j]["version"] >= threshold
                ]
            elif step and stops and rule in ("rennala", "malenia"):
                others = [j for j in range(n) if running[j]]
            elif step and rule == "msync":
                others = list(range(n))
            for j in others:
                if j != w:
                    begin(j, t, {"version": version})
            if not (rule == "msync" and accepted and not step):
                begin(w, t, {"version": version})
        else:
            a = int(assign(e))
            if not 0 <= a < n:
                raise ValueError(f"assign({e}) = {a} is not a worker")
            queue[a].append({"version": version})
            if queue[w]:
                begin(w, t, queue[w].pop(0))
            if a != w and running[a] is None:
                begin(a, t, queue[a].pop(0))
        out["time"][e] = t
        out["worker"][e] = w
        out["staleness"][e] = tau
        out["applied"][e] = accepted
        out["timed_out"][e] = timed_out
        out["weight"][e] = w_weight
        out["step"][e] = step
        out["updates"][e] = version
        out["assigned"][e] = a
        e += 1
    return out


def _times(name: str, value: Any, *, allow_inf: bool) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {value!r}") from err
    bad = np.isnan(arr) | (arr < 0) | (np.isinf(arr) & (not allow_inf))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "non-negative" if allow_inf else "finite and non-negative"
        raise ValueError(f"{name} must be {kind}; got {float(arr[where])!r} at index {where}")
    return arr


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
