"""The arithmetic of scripts/load.sh: what it reads from pgbench's logs and
authcode_load's JSON, and the markdown results table it writes.

    results_table.py --verify-pool SCRATCH WARMUP SECONDS RIGHT% CONCURRENCY
        codes a service verify run should know before it starts
    results_table.py --rss-at SCRATCH RSS_FIRST
        the next run's --rss-at: its call that is the server's RSS_FIRST-th
    results_table.py --long-run SCRATCH RSS_FIRST TOTAL
        calls of the long run, and after how many of them to read VmRSS,
        so that the server has answered TOTAL calls in all at its end
        (unless scripts/load.sh's time budget stops it first)
    results_table.py --table SCRATCH SECONDS WARMUP CONCURRENCY RECIPIENTS
                     RIGHT% HISTORY_ROWS RSS_FIRST TOTAL
        the results table, in markdown

Only the standard library.
"""

import glob
import json
import math
import os
import platform
import subprocess
import sys

# Targets of the benchmark (bench/README.md).
TARGET_RATIO = 0.9
TARGET_P99_MS = 20.0
TARGET_HISTORY_RATIO = 0.9
TARGET_RSS_GROWTH = 0.10
# Delivery keeps up when the mails sent in a window are at least this
# share of the codes issued in it.
KEEP_UP_SHARE = 0.95
# In the order scripts/load.sh runs them; a -prefill run only issues the
# codes the verify run after it needs.
RUNS = ("issue", "verify-prefill", "verify", "issue-history",
        "verify-history-prefill", "verify-history", "long")


def percentile(sorted_values, p):
    """Nearest rank, as authcode_load computes it; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = min(max(math.ceil(p * len(sorted_values)), 1), len(sorted_values))
    return sorted_values[rank - 1]


def pgbench_stats(scratch, name, warmup, seconds):
    """Transactions per second and latency (ms) of the transactions that
    ended inside [start + warmup, start + warmup + seconds], from pgbench's
    per-transaction logs; None when there are none."""
    ends = []
    for path in glob.glob(os.path.join(scratch, "pgbench-%s.*" % name)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 6 or not fields[2].isdigit():
                    continue  # A failed or skipped transaction.
                latency_us = int(fields[2])
                end = int(fields[4]) + int(fields[5]) / 1e6
                ends.append((end, latency_us))
    if not ends:
        return None
    start = min(end - latency / 1e6 for end, latency in ends)
    low, high = start + warmup, start + warmup + seconds
    latencies = sorted(latency / 1000.0 for end, latency in ends
                       if low <= end < high)
    return {"per_second": len(latencies) / seconds,
            "p50_ms": percentile(latencies, 0.5),
            "p90_ms": percentile(latencies, 0.9),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": percentile(latencies, 1.0)}


def load_json(scratch, name):
    path = os.path.join(scratch, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_text(scratch, name, default=""):
    path = os.path.join(scratch, name)
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def calls_before(scratch, name=None):
    """Calls the server answered before run `name` (all runs so far when
    None): the load tool made every one of them."""
    total = 0
    for run_name in RUNS:
        if run_name == name:
            break
        run = load_json(scratch, run_name)
        if run:
            total += run["requests"] + run.get("prefill_requests", 0)
    return total


def rss_samples(scratch):
    """(call of the server's life, VmRSS kB) of every reading, in order."""
    samples = []
    for name in RUNS:
        run = load_json(scratch, name)
        if run:
            before = calls_before(scratch, name)
            samples += [(before + s["requests"], s["rss_kb"])
                        for s in run["server_memory"]["at_requests"]]
    return sorted(samples)


def verify_pool(scratch, warmup, seconds, right_percent, concurrency):
    """Codes a verify run should know when it starts: it uses one up with
    each right guess. Sized from the service's last verify run if there
    was one, else from the reference's, with some room; more would cost
    minutes of issuing first. A run that still runs out says so in its
    outcomes ("unknown code")."""
    last = load_json(scratch, "verify")
    if last and last["verify"]["per_second"] > 0:
        rate = 1.2 * last["verify"]["per_second"]
    else:
        ref = pgbench_stats(scratch, "verify", warmup, seconds)
        rate = 1.1 * (ref["per_second"] if ref else 5000.0)
    return math.ceil(rate * (warmup + seconds) * right_percent / 100
                     + 4 * concurrency)


def rss_at(scratch, rss_first):
    """The --rss-at of the next run: the server's rss_first-th call, if it
    is still ahead; nothing otherwise."""
    ahead = rss_first - calls_before(scratch)
    return str(ahead) if ahead >= 1 else ""


def long_run(scratch, rss_first, total):
    """The long run's calls, and its --rss-at: its first call (in case no
    earlier run reached rss_first) and the server's rss_first-th call if
    still ahead. Its end is read anyway."""
    before = calls_before(scratch)
    calls = max(total - before, math.ceil(total / 10))
    points = {1}
    if 1 <= rss_first - before < calls:
        points.add(rss_first - before)
    return calls, ",".join(map(str, sorted(points)))


# --- The table. ---

def fmt(value, digits=0):
    if value is None:
        return "-"
    return "{:,.{}f}".format(value, digits)


def latency(stats):
    if not stats:
        return "-"
    return "%s / %s / %s" % (fmt(stats["p50_ms"], 1), fmt(stats["p90_ms"], 1),
                             fmt(stats["p99_ms"], 1))


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def ratio_row(what, reference, service, target):
    if not reference or not service:
        return "| %s | %s | %s | - | %s | no figure |" % (
            what, fmt(reference and reference["per_second"]),
            fmt(service and service["per_second"]), target)
    ratio = service["per_second"] / reference["per_second"]
    return "| %s | %s | %s | %.2f | %s | %s |" % (
        what, fmt(reference["per_second"]), fmt(service["per_second"]),
        ratio, target, verdict(ratio >= TARGET_RATIO))


def p99_row(what, reference, service):
    ok = service is not None and service["p99_ms"] <= TARGET_P99_MS
    return "| %s p50 / p90 / p99 (ms) | %s | %s | - | p99 ≤ %g ms | %s |" % (
        what, latency(reference), latency(service), TARGET_P99_MS,
        verdict(ok))


def history_row(what, empty, full):
    if not empty or not full:
        return ("| %s with history vs empty | - | - | - | ≥ %.1f "
                "| no figure |" % (what, TARGET_HISTORY_RATIO))
    ratio = full["per_second"] / empty["per_second"]
    return "| %s with history vs empty (calls/s) | %s (empty) | %s | %.2f | " \
           "≥ %.1f | %s |" % (what, fmt(empty["per_second"]),
                              fmt(full["per_second"]), ratio,
                              TARGET_HISTORY_RATIO,
                              verdict(ratio >= TARGET_HISTORY_RATIO))


def delivery_row(scratch, name):
    """Mails sent against codes issued in the window, and the outbox once
    the load tool stopped waiting for the last mails (queued or sending
    jobs; a job superseded by a newer code for its recipient is never
    sent, and is not counted there)."""
    run = load_json(scratch, name)
    if not run:
        return "| delivery during %s | - | - | - | - | no figure |" % name
    issued = run["issue"]["ok"]
    sent = run["delivery"]["delivered_in_window"]
    share = sent / issued if issued else 0
    outbox = read_text(scratch, name + ".outbox", "?")
    return ("| delivery during %s (mails/s vs codes/s) | - | %s vs %s | %.2f "
            "| ≥ %.2f, outbox empty after | %s (%d mails behind when the "
            "load stopped, drained in %.1f s; outbox %s) |" % (
                name, fmt(run["delivery"]["per_second"]),
                fmt(run["issue"]["per_second"]), share, KEEP_UP_SHARE,
                verdict(share >= KEEP_UP_SHARE and outbox == "0"),
                run["delivery"]["behind_at_end"],
                run["delivery"]["drain_seconds"], outbox))


def rss_row(scratch, rss_first, total):
    """VmRSS at the server's rss_first-th call (or the first reading after
    it) against that at the end of the long run, which should be its
    total-th call unless the time budget ran out first."""
    samples = [s for s in rss_samples(scratch) if s[0] >= rss_first]
    run = load_json(scratch, "long")
    if not samples or not run:
        return "| server VmRSS | - | - | - | within ±10% | no figure |"
    first_call, first = samples[0]
    memory = run["server_memory"]
    last_call = (calls_before(scratch, "long") + run["requests"]
                 + run.get("prefill_requests", 0))
    last = memory["rss_end_kb"]
    growth = (last - first) / first
    short = ("; the time budget ran out before call %s" % fmt(total)
             if last_call < total else "")
    return ("| server VmRSS at call %s → %s (MiB) | - | %.1f → %.1f | %+.1f%% "
            "| within ±10%% | %s (VmHWM %.1f MiB%s) |" % (
                fmt(first_call), fmt(last_call), first / 1024, last / 1024,
                100 * growth, verdict(abs(growth) <= TARGET_RSS_GROWTH),
                memory["hwm_kb"] / 1024, short))


def run_rows(scratch):
    rows = ["| run | calls | calls/s | p50 / p90 / p99 / max (ms) | failed "
            "| verify outcomes (right / wrong / unknown code) | server VmRSS "
            "min-max (MiB) |", "|---|---|---|---|---|---|---|"]
    for name in RUNS:
        run = load_json(scratch, name)
        if not run:
            rows.append("| %s | no result | | | | | |" % name)
            continue
        if run["mode"] == "prefill":
            rows.append("| %s (not measured) | %s issued | %s | - | %s | "
                        "| |" % (name, fmt(run["prefill_requests"]),
                                 fmt(run["prefill_requests"] /
                                     max(run["prefill_seconds"], 1e-9)),
                                 run["prefill_failed"] or "none"))
            continue
        kinds = [kind for kind in ("issue", "verify")
                 if run[kind]["ok"] or run[kind]["failed"]]
        for kind in kinds:
            calls = run[kind]
            outcomes = ""
            if kind == "verify":
                outcomes = " / ".join(
                    ", ".join("%s %d" % (k, v) for k, v in
                              sorted(run["verify"]["outcomes"][g].items()))
                    or "-" for g in ("right", "wrong", "unknown"))
            memory = run["server_memory"]
            label = "%s: %s" % (name, kind) if len(kinds) > 1 else name
            rows.append("| %s | %s | %s | %s / %s | %s | %s | %.1f-%.1f |"
                        % (label,
                           fmt(calls["ok"]),
                           fmt(calls["per_second"]),
                           latency(calls), fmt(calls["max_ms"], 1),
                           ", ".join("%s %d" % kv for kv in
                                     calls["failed"].items()) or "none",
                           outcomes, memory["rss_min_kb"] / 1024,
                           memory["rss_max_kb"] / 1024))
    return rows


def machine():
    def run(*command):
        try:
            return subprocess.run(command, capture_output=True, text=True,
                                  check=False).stdout
        except OSError:
            return ""
    model = ""
    for line in run("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    memory = ""
    for line in run("free", "-g").splitlines():
        if line.startswith("Mem:"):
            memory = line.split()[1] + " GiB"
    return "nproc %s, %s, %s, %s" % (os.cpu_count(), model or "unknown CPU",
                                     memory, platform.platform())


def elapsed(scratch):
    parts = read_text(scratch, "elapsed").split()
    if len(parts) != 2:
        return "?"
    return "%s s, of which %s s installing and building" % tuple(parts)


def table(scratch, seconds, warmup, concurrency, recipients, right_percent,
          history_rows, rss_first, total):
    ref_issue = pgbench_stats(scratch, "issue", warmup, seconds)
    ref_verify = pgbench_stats(scratch, "verify", warmup, seconds)
    runs = {name: load_json(scratch, name) for name in RUNS}
    issue = runs["issue"] and runs["issue"]["issue"]
    verify = runs["verify"] and runs["verify"]["verify"]
    issue_h = runs["issue-history"] and runs["issue-history"]["issue"]
    verify_h = runs["verify-history"] and runs["verify-history"]["verify"]
    history = read_text(scratch, "history").split()

    lines = [
        "Machine: %s." % machine(),
        "Settings: %d calls in flight (pgbench: %d clients, -j 2, "
        "-M prepared); %d s measured after %d s of warm-up per run; "
        "%s recipients; %d%% of verify calls with the right code; "
        "PostgreSQL %s with fsync on; %s historical rows%s; the long "
        "mixed run goes on to the server's %s-th call or until the time "
        "budget is spent, and its VmRSS then is compared with that at the "
        "%s-th call (or the first reading after it). Built from commit %s "
        "(and the working tree's changes, if any). Whole script: %s." % (
            concurrency, concurrency, seconds, warmup, fmt(recipients),
            right_percent, read_text(scratch, "postgres-version", "?"),
            fmt(history_rows),
            " (codes %s, jobs %s, database %s, loaded in %s s)" % (
                fmt(int(history[0])), fmt(int(history[1])),
                " ".join(history[2:-1]), history[-1])
            if len(history) >= 4 else "", fmt(total), fmt(rss_first),
            read_text(scratch, "commit", "?"), elapsed(scratch)),
        "",
        "| what | reference (pgbench) | service | ratio | target "
        "| verdict |",
        "|---|---|---|---|---|---|",
        ratio_row("Issue, calls/s", ref_issue, issue,
                  "≥ %.1f" % TARGET_RATIO),
        p99_row("Issue", ref_issue, issue),
        delivery_row(scratch, "issue"),
        ratio_row("Verify, calls/s", ref_verify, verify,
                  "≥ %.1f" % TARGET_RATIO),
        p99_row("Verify", ref_verify, verify),
        history_row("Issue", issue, issue_h),
        p99_row("Issue with history", None, issue_h),
        delivery_row(scratch, "issue-history"),
        history_row("Verify", verify, verify_h),
        p99_row("Verify with history", None, verify_h),
        rss_row(scratch, rss_first, total),
        "",
        "Every run of the service:",
        "",
    ]
    lines += run_rows(scratch)
    lines += ["", "Outbox when the server stopped (state, jobs): %s." %
              (read_text(scratch, "outbox-final", "?").replace("\n", "; "))]
    failures = read_text(scratch, "failures")
    if failures:
        lines += ["", "Failed steps:", ""] + ["- " + line for line in
                                               failures.splitlines()]
    return "\n".join(lines)


def main(argv):
    if argv[:1] == ["--verify-pool"]:
        print(verify_pool(argv[1], *map(int, argv[2:6])))
    elif argv[:1] == ["--rss-at"]:
        print(rss_at(argv[1], int(argv[2])))
    elif argv[:1] == ["--long-run"]:
        print(*long_run(argv[1], int(argv[2]), int(argv[3])))
    elif argv[:1] == ["--table"]:
        print(table(argv[1], *map(int, argv[2:10])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
