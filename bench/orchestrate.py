#!/usr/bin/env python3
"""Drives the side-by-side comparison: one long-lived worker per implementation (ours in Rust,
torch, jax, numpy), rows interleaved (row by row, implementations in rotating order, several
rounds), medians over all samples of all rounds, one table of times and ratios.

Run it through `bench/compare`, which builds the Rust worker and the Python environment.
"""

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
import rows as R  # noqa: E402

PEERS = ["torch", "jax", "numpy"]


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(threshold: float, max_wait: float, log):
    """Wait until the 1-minute load average drops below `threshold` (at most `max_wait` s)."""
    start = time.time()
    la = loadavg()
    if la < threshold:
        return la, 0.0
    log(f"waiting for a quiet machine: load {la:.2f} ≥ {threshold} (at most {max_wait:.0f} s)")
    while time.time() - start < max_wait:
        time.sleep(5)
        la = loadavg()
        if la < threshold:
            break
    waited = time.time() - start
    if la >= threshold:
        log(f"machine still busy after {waited:.0f} s (load {la:.2f}); measuring anyway, noted in the results")
    return la, waited


class Worker:
    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.err = open(os.path.join(logdir, f"{name}.stderr"), "w")
        self.rows = set(
            subprocess.run(argv + ["--list"], capture_output=True, text=True, check=True).stdout.split()
        )
        self.proc = subprocess.Popen(
            argv + ["--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1
        )

    def ask(self, row):
        if self.proc.poll() is not None:
            return {"row": row, "impl": self.name, "error": f"worker exited with {self.proc.returncode}"}
        self.proc.stdin.write(row + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"row": row, "impl": self.name, "error": "worker died (see its .stderr log)"}
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.err.close()


def now_utc():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def fmt_time(s):
    if s is None:
        return "—"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}


def summarise(results, impls, row_ids):
    """results: list of answers -> {row: {impl: summary}}."""
    table = {}
    for row in row_ids:
        table[row] = {}
        for impl in impls:
            answers = [a for a in results if a["row"] == row and a["impl"] == impl]
            ok = [a for a in answers if "median_s" in a]
            if not ok:
                errs = [a.get("error") for a in answers if "error" in a]
                if errs:
                    table[row][impl] = {"error": errs[0]}
                continue
            pooled = [s for a in ok for s in a["samples"]]
            round_medians = [a["median_s"] for a in ok]
            s = {
                "median_s": statistics.median(pooled),
                "round_medians_s": round_medians,
                "n_samples": len(pooled),
                "version": ok[0].get("version"),
            }
            for k in ("flop", "n_params", "hvps", "top", "api"):
                if k in ok[-1]:
                    s[k] = ok[-1][k]
            if "flop" in s:
                s["gflops"] = s["flop"] / s["median_s"] / 1e9
            table[row][impl] = s
    return table


def med(table, row, impl):
    return table.get(row, {}).get(impl, {}).get("median_s")


def derived(table, impls):
    """(fwd+bwd)/fwd, HVP/gradient, training-step GFLOP/s vs GEMM peak."""
    out = {"fwdbwd_over_fwd": {}, "hvp_over_grad": {}, "step_gflops": {}, "gemm_peak_gflops": {}}
    for impl in impls:
        ratios = {}
        for d in R.DTYPES:
            for b in R.BATCHES:
                f, fb = med(table, f"mlp_fwd_{d}_b{b}", impl), med(table, f"mlp_fwdbwd_{d}_b{b}", impl)
                if f and fb:
                    ratios[f"mlp_{d}_b{b}"] = fb / f
        for n in ("1", "10k"):
            f, fb = med(table, f"nb_fwd_{n}", impl), med(table, f"nb_fwdbwd_{n}", impl)
            if f and fb:
                ratios[f"nb_{n}"] = fb / f
        out["fwdbwd_over_fwd"][impl] = ratios
        g, h = med(table, "grad_150_256_256_1", impl), med(table, "hvp_150_256_256_1", impl)
        if g and h:
            out["hvp_over_grad"][impl] = h / g
        peaks = {}
        for d in R.DTYPES:
            vals = [
                table[r][impl]["gflops"]
                for r in R.gemm_rows()
                if f"_{d}_" in r and "gflops" in table.get(r, {}).get(impl, {})
            ]
            if vals:
                peaks[d] = max(vals)
        out["gemm_peak_gflops"][impl] = peaks
        steps = {}
        for d in R.DTYPES:
            for b in R.BATCHES:
                s = table.get(f"mlp_step_{d}_b{b}", {}).get(impl, {})
                if "gflops" in s:
                    steps[f"{d}_b{b}"] = s["gflops"]
        out["step_gflops"][impl] = steps
    return out


# Cache-line round trip between our worker's two threads, measured before each of our rows:
# where the host put the two vCPUs (measured on the 2-core EPYC VM: ~27 ns on one core's
# hyperthreads, ~65 ns on one CCD, ~330 ns on two CCDs).
PLACEMENTS = ((45.0, "one core's two hyperthreads (two threads no faster than one)"),
              (150.0, "one CCD"),
              (float("inf"), "two CCDs (data one thread wrote crosses the dies to the other)"))


def placement_summary(results):
    """One line: how many of our row measurements ran on each vCPU placement, naming the rows
    measured off the usual one-CCD placement."""
    ours = [a for a in results if a.get("impl") == "ours" and a.get("rtt_ns") is not None]
    if not ours:
        return None
    groups = {}
    for a in ours:
        name = next(n for limit, n in PLACEMENTS if a["rtt_ns"] < limit)
        groups.setdefault(name, []).append(a)
    parts = []
    for _, name in PLACEMENTS:
        got = groups.get(name, [])
        if not got:
            continue
        rtts = sorted(a["rtt_ns"] for a in got)
        text = f"{len(got)} on {name}, {rtts[len(rtts) // 2]:.0f} ns"
        if name != "one CCD":
            text += " (" + ", ".join(f"{a['row']} round {a.get('round', 0) + 1}" for a in got) + ")"
        parts.append(text)
    return ("Placement of our two threads (a cache line's round trip between them, measured before "
            f"each of our {len(ours)} row measurements; median per group): " + "; ".join(parts) + ".")


def markdown(meta, table, der, impls, row_ids):
    peers = [i for i in impls if i != "ours"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores), "
        f"{meta['rounds']} interleaved rounds; load average {meta['load_start']:.2f} at start, "
        f"{meta['load_end']:.2f} at end. Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
        + ".",
        "",
        "Median time per call (pooled samples of all rounds). Ratio = peer time / our time: "
        "above 1× we are faster.",
        "",
        "| row | " + " | ".join(impls) + " | " + " | ".join(f"{p}/ours" for p in peers) + " |",
        "|---|" + "---:|" * (len(impls) + len(peers)),
    ]
    for row in row_ids:
        cells = []
        for impl in impls:
            s = table[row].get(impl)
            if s is None:
                cells.append("")
            elif "error" in s:
                cells.append("n/a")
            else:
                c = fmt_time(s["median_s"])
                if "gflops" in s:
                    c += f" ({s['gflops']:.0f} GF/s)"
                if "hvps" in s:
                    c += f" ({s['hvps']} HVPs)"
                cells.append(c)
        ours = med(table, row, "ours")
        ratios = []
        for p in peers:
            t = med(table, row, p)
            ratios.append(fmt_ratio(t / ours) if (t and ours) else "")
        lines.append(f"| {R.DESCRIPTION.get(row, row)} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += ["", "(forward+backward)/forward:", ""]
    keys = sorted({k for impl in impls for k in der["fwdbwd_over_fwd"].get(impl, {})})
    if keys:
        lines.append("| shape | " + " | ".join(impls) + " |")
        lines.append("|---|" + "---:|" * len(impls))
        for k in keys:
            lines.append(
                f"| {k} | "
                + " | ".join(
                    f"{der['fwdbwd_over_fwd'][i][k]:.2f}" if k in der["fwdbwd_over_fwd"].get(i, {}) else ""
                    for i in impls
                )
                + " |"
            )
    if der["hvp_over_grad"]:
        lines += ["", "HVP / gradient (150-256-256-1, 1,000 samples): "
                  + ", ".join(f"{i} {v:.2f}" for i, v in der["hvp_over_grad"].items())]
    lines += ["", "Training step (784-256-256-10) achieved GFLOP/s vs the same library's best GEMM:", ""]
    for impl in impls:
        st, pk = der["step_gflops"].get(impl, {}), der["gemm_peak_gflops"].get(impl, {})
        if st:
            parts = []
            for k, v in st.items():
                d = k.split("_")[0]
                frac = f" ({100 * v / pk[d]:.0f}% of {pk[d]:.0f})" if d in pk else ""
                parts.append(f"{k} {v:.0f}{frac}")
            lines.append(f"- {impl}: " + ", ".join(parts))
    if meta.get("placement"):
        lines += ["", meta["placement"]]
    if meta.get("load_warning"):
        lines += ["", f"Warning: {meta['load_warning']}"]
    return "\n".join(lines) + "\n"


def run(args, impls, row_ids, argv, extra, logdir, log):
    """Measures every row, interleaved; every answer is also appended to results/raw.jsonl."""
    load_start, waited = wait_quiet(args.load_threshold, args.max_wait, log)
    raw_path = os.path.join(args.out, "raw.jsonl")
    raw = open(raw_path, "w")
    workers = {}
    for impl in impls:
        log(f"starting {impl}")
        workers[impl] = Worker(impl, argv[impl] + extra, logdir)
    results = []
    busy = []
    head = {"date": now_utc(), "load_start": load_start, "waited_s": waited, "rounds": args.rounds, "impls": impls, "rows": row_ids}
    raw.write(json.dumps(head) + "\n")
    try:
        for rnd in range(args.rounds):
            for i, row in enumerate(row_ids):
                order = [w for w in impls if row in workers[w].rows]
                k = (rnd + i) % max(len(order), 1)
                order = order[k:] + order[:k]  # rotate: nobody always runs first
                for impl in order:
                    la = loadavg()
                    if la >= args.load_threshold:
                        busy.append(la)
                    ans = workers[impl].ask(row)
                    ans["round"] = rnd
                    ans["load"] = la
                    results.append(ans)
                    raw.write(json.dumps(ans) + "\n")
                    raw.flush()
                    t = ans.get("median_s")
                    log(f"round {rnd + 1}/{args.rounds} {row:28s} {impl:6s} "
                        + (fmt_time(t) if t is not None else f"({ans.get('error')})"))
    finally:
        for w in workers.values():
            w.close()
        raw.close()
    # the head line records the busy list only at the end: rewrite it
    with open(raw_path) as f:
        lines = f.readlines()
    head["busy"] = busy
    lines[0] = json.dumps(head) + "\n"
    with open(raw_path, "w") as f:
        f.writelines(lines)
    return results, busy, load_start, waited


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ours", required=True, help="the Rust worker binary")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--impls", default="ours,torch,jax,numpy")
    ap.add_argument("--rows", default="", help="comma-separated row ids or prefixes (default: all)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-threshold", type=float, default=0.7)
    ap.add_argument("--max-wait", type=float, default=300)
    ap.add_argument("--quick", action="store_true", help="tiny time budgets: a smoke test, not a measurement")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--from-raw", help="re-summarise a raw.jsonl of an earlier run instead of measuring")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    logdir = os.path.join(args.out, "logs")
    os.makedirs(logdir, exist_ok=True)

    def log(msg):
        print(f"[compare] {msg}", file=sys.stderr, flush=True)

    impls = args.impls.split(",")
    row_ids = R.ALL
    if args.rows:
        pats = args.rows.split(",")
        row_ids = [r for r in R.ALL if any(r == p or r.startswith(p) for p in pats)]
    extra = ["--quick"] if args.quick else []
    argv = {"ours": [args.ours]}
    for p in PEERS:
        argv[p] = [args.python, os.path.join(HERE, "peers", f"{p}_rows.py")]
    head_date = None
    if args.from_raw:
        # several runs (comma-separated) pool their samples: e.g. a rerun of some rows
        head, results, busy, seen = None, [], [], []
        for path in args.from_raw.split(","):
            with open(path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            if not lines:
                sys.exit(f"{path}: empty raw log")
            head = head or lines[0]
            busy += lines[0].get("busy", [])
            seen += lines[0]["rows"]
            results += lines[1:]
        load_start, waited = head["load_start"], head["waited_s"]
        busy = [a["load"] for a in results if a.get("load", 0.0) >= args.load_threshold]
        args.rounds = 1 + max((a.get("round", 0) for a in results), default=0)  # rounds completed
        head["rows"] = [r for r in R.ALL if r in seen]
        head_date = head.get("date")
        impls = head["impls"]
        row_ids = [r for r in head["rows"]]
        measure = False
    else:
        measure = True
    if measure:
        results, busy, load_start, waited = run(args, impls, row_ids, argv, extra, logdir, log)
    table = summarise(results, impls, row_ids)
    der = derived(table, impls)
    versions = {}
    for a in results:
        if a.get("version"):
            versions.setdefault(a["impl"], a["version"])
    meta = {
        "date": head_date or now_utc(),
        "machine": machine(),
        "rounds": args.rounds,
        "quick": args.quick,
        "load_start": load_start,
        "load_end": loadavg(),
        "waited_s": waited,
        "versions": {i: versions.get(i) for i in impls},
    }
    if busy:
        meta["load_warning"] = (
            f"{len(busy)} of {len(results)} measurements started with load average ≥ {args.load_threshold} "
            f"(max {max(busy):.2f}); the machine was shared"
        )
    placement = placement_summary(results)
    if placement:
        meta["placement"] = placement
    md = markdown(meta, table, der, impls, row_ids)
    doc = {"meta": meta, "table": table, "derived": der, "raw": results}
    for name, text in (("latest.json", json.dumps(doc, indent=1)), ("latest.md", md)):
        tmp = os.path.join(args.out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(args.out, name))
    if not args.quick and set(row_ids) == set(R.ALL):
        update_readme(md)
    print(md)


def update_readme(md):
    """Puts a full run's table into bench/README.md between its table markers."""
    path = os.path.join(HERE, "README.md")
    begin, end = "<!-- table:begin -->", "<!-- table:end -->"
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + begin + "\n" + md + end + tail)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
