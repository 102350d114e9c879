#!/usr/bin/env python3
"""bench/py/perf_report.py - the summary of `bench/run.sh perf`.

Reads the rows the scenarios appended (TSV; see run.sh report(), and the
.paced and .stampede side files), prints markdown: one table per hit
scenario (req/s, p99, ratios to the limit and to the best peer, requests per
CPU-second), the paced-connection table, the stampede table and strata's
standing against the targets of the issue. Writes DIR/chart.dat and
DIR/chart.gp (gnuplot: req/s and p99 per peer per scenario -> DIR/perf.png).

usage: perf_report.py PERF.TSV DIR DATE MACHINE COMMIT
"""
import os
import sys

HIT = ["cache-hit", "cache-hot", "cache-big", "cache-conn"]
TITLE = {
    "cache-hit": "(a) cache-hit: 1 KiB, 1,000 keys, 64 keep-alive connections",
    "cache-hot": "(b) cache-hot: 1 KiB, one key, 64 keep-alive connections",
    "cache-big": "(c) cache-big: 100 KiB, 100 keys, 64 keep-alive connections",
    "cache-conn": "(d) cache-conn: 1 KiB, one key, wrk -H \"Connection: close\" (64 connections, one request each): req/s = new connections/s",
}
DELAY_MS = float(os.environ.get("BENCH_ORIGIN_DELAY_MS", "200"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def fr(v, d=0):
    return "-" if v != v else f"{v:.{d}f}"


def rat(a, b):
    return "n/a" if not (b == b and b > 0 and a == a) else f"{a / b:.2f}"


def rng(r, d=0):
    try:
        lo, hi = r.split("–")
        return f"{float(lo):.{d}f}–{float(hi):.{d}f}"
    except ValueError:
        return "-"


def main():
    tsv, outdir, date, machine, commit = sys.argv[1:6]
    rows = {}
    for line in open(tsv):
        f = line.rstrip("\n").split("\t")
        if len(f) < 12:
            continue
        sc, t = f[0], f[1]
        rows.setdefault(sc, {})[t] = {
            "rps": num(f[2]), "rps_r": f[3], "p99": num(f[4]), "p99_r": f[5], "rpc": num(f[6]),
            "mbs": num(f[7]), "mbs_r": f[8], "invalid": f[9], "errors": int(f[10] or 0), "cpu": num(f[11]),
        }
    out = []
    p = out.append
    p(f"## Performance run, {date}\n")
    p(f"- Machine: {machine}. strata commit {commit}.")
    p("- Command: `BENCH_DURATION=%s ROUNDS=%s bench/run.sh perf`. Servers pinned to CPU 0, wrk and the Python clients to CPU 1."
      % (os.environ.get("BENCH_DURATION", "10"), os.environ.get("ROUNDS", "3")))
    p("- Every figure is the median of the rounds (ranges in the per-scenario sections). The *best peer* is the best "
      "valid peer other than strata and the limit, chosen per column. *limit* = the nginx origin answering the body "
      "itself (`return 200` from memory; for 100 KiB, a static file via sendfile + open_file_cache).\n")
    verdict = {}
    for sc in HIT:
        if sc not in rows:
            continue
        r = rows[sc]
        lim = r.get("limit", {})
        peers = {t: v for t, v in r.items() if t not in ("strata", "limit") and not v["invalid"] and v["errors"] == 0}
        best = {}
        for k, better in (("rps", max), ("rpc", max), ("mbs", max), ("p99", min)):
            cand = [(v[k], t) for t, v in peers.items() if v[k] == v[k]]
            best[k] = better(cand) if cand else (float("nan"), "-")
        big = sc == "cache-big"
        p(f"### {TITLE[sc]}\n")
        hdr = "| target | req/s | " + ("MB/s | MB/s vs limit | MB/s vs best peer | " if big else "") + \
              "req/s vs limit | req/s vs best peer | p99 ms | p99 vs limit | p99 vs best peer | req per CPU-s | req/CPU-s vs limit | req/CPU-s vs best peer | errors |"
        p(hdr)
        p("|" + "---|" + "---:|" * (hdr.count("|") - 2))
        for t, v in r.items():
            name = f"**{t}**" if t == "strata" else t
            if v["invalid"]:
                name += f" (INVALID: {v['invalid']})"
            cells = [name, fr(v["rps"])]
            if big:
                cells += [fr(v["mbs"], 1), rat(v["mbs"], lim.get("mbs", float("nan"))), rat(v["mbs"], best["mbs"][0])]
            cells += [rat(v["rps"], lim.get("rps", float("nan"))), rat(v["rps"], best["rps"][0]),
                      fr(v["p99"], 2), rat(v["p99"], lim.get("p99", float("nan"))), rat(v["p99"], best["p99"][0]),
                      fr(v["rpc"]), rat(v["rpc"], lim.get("rpc", float("nan"))), rat(v["rpc"], best["rpc"][0]),
                      str(v["errors"])]
            p("| " + " | ".join(cells) + " |")
        p("\nBest peer: req/s %s, p99 %s, req/CPU-s %s%s.\n" % (
            best["rps"][1], best["p99"][1], best["rpc"][1], f", MB/s {best['mbs'][1]}" if big else ""))
        verdict[sc] = (r.get("strata"), lim, best)

    paced = {}
    if os.path.exists(tsv + ".paced"):
        for line in open(tsv + ".paced"):
            f = line.rstrip("\n").split("\t")
            paced[f[1]] = {"rate": num(f[2]), "p50": num(f[3]), "p99": num(f[4]), "p99_r": f[5],
                           "max": num(f[6]), "err": int(f[7] or 0), "invalid": f[8]}
        p("### (d) cache-conn, paced: 1,000 new connections/s for 10 s (bench/py/paced_conn.py)\n")
        p("| target | achieved conn/s | p50 ms | p99 ms | p99 range | max ms | errors | p99 vs limit |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t, v in paced.items():
            p(f"| {t} | {fr(v['rate'])} | {fr(v['p50'], 2)} | {fr(v['p99'], 2)} | {rng(v['p99_r'], 2)} | "
              f"{fr(v['max'], 2)} | {v['err']} | {rat(v['p99'], paced.get('limit', {}).get('p99', float('nan')))} |")
        p("")

    st = {}
    if os.path.exists(tsv + ".stampede"):
        for line in open(tsv + ".stampede"):
            f = line.rstrip("\n").split("\t")
            st[f[1]] = {"origin": f[2], "p50": num(f[3]), "max": num(f[4]), "bad": f[5],
                        "maxmax": num(f[6]) if len(f) > 6 else num(f[4])}
        p(f"### (e) stampede: 200 clients, one cold key, origin {DELAY_MS:.0f} ms\n")
        p("| target | origin requests per round | p50 ms | max ms (median) | max ms (worst round) | non-2xx |")
        p("|---|---|---:|---:|---:|---:|")
        for t, v in st.items():
            p(f"| {t} | {v['origin']} | {fr(v['p50'], 1)} | {fr(v['max'], 1)} | {fr(v['maxmax'], 1)} | {v['bad']} |")
        p("")

    # strata against the targets
    p("### strata against the targets\n")
    p("| scenario | target | strata | met? |")
    p("|---|---|---|---|")

    def yes(b):
        return "yes" if b else "**no**"
    for sc in ("cache-hit", "cache-hot"):
        if sc not in verdict or not verdict[sc][0]:
            continue
        s, lim, best = verdict[sc]
        a = s["rps"] / lim["rps"] if lim else float("nan")
        p(f"| {sc} | req/s >= 0.9 x limit | {a:.3f} x | {yes(a >= 0.9)} |")
        b = s["rps"] / best["rps"][0]
        p(f"| {sc} | req/s >= 1.3 x best peer ({best['rps'][1]}) | {b:.3f} x | {yes(b >= 1.3)} |")
        c = s["rpc"] / lim["rpc"] if lim else float("nan")
        p(f"| {sc} | req/CPU-s >= 0.9 x limit | {c:.3f} x | {yes(c >= 0.9)} |")
        d = s["rpc"] / best["rpc"][0]
        p(f"| {sc} | req/CPU-s >= 1.3 x best peer ({best['rpc'][1]}) | {d:.3f} x | {yes(d >= 1.3)} |")
        p(f"| {sc} | p99 <= best peer's ({best['p99'][1]}, {best['p99'][0]:.2f} ms) | {s['p99']:.2f} ms | {yes(s['p99'] <= best['p99'][0])} |")
    if "cache-big" in verdict and verdict["cache-big"][0]:
        s, lim, best = verdict["cache-big"]
        p(f"| cache-big | MB/s >= best peer ({best['mbs'][1]}, {best['mbs'][0]:.1f}) | {s['mbs']:.1f} MB/s ({s['mbs'] / best['mbs'][0]:.2f} x) | {yes(s['mbs'] >= best['mbs'][0])} |")
    if "cache-conn" in verdict and verdict["cache-conn"][0]:
        s, lim, best = verdict["cache-conn"]
        p(f"| cache-conn | conn/s (wrk, Connection: close) >= best peer ({best['rps'][1]}, {best['rps'][0]:.0f}) | {s['rps']:.0f} ({s['rps'] / best['rps'][0]:.2f} x) | {yes(s['rps'] >= best['rps'][0])} |")
        if "strata" in paced:
            pp = {t: v for t, v in paced.items() if t not in ("strata", "limit") and v["err"] == 0 and not v["invalid"]}
            bp = min(((v["p99"], t) for t, v in pp.items()), default=(float("nan"), "-"))
            sv = paced["strata"]
            p(f"| cache-conn | paced 1,000 conn/s: p99 <= best peer's ({bp[1]}, {bp[0]:.2f} ms), no errors | {sv['p99']:.2f} ms, {sv['err']} errors | {yes(sv['p99'] <= bp[0] and sv['err'] == 0)} |")
    if "strata" in st:
        v = st["strata"]
        one = all(x == "1" for x in v["origin"].split(","))
        p(f"| stampede | exactly 1 origin request per round | {v['origin']} | {yes(one)} |")
        p(f"| stampede | no client waits > origin + 50 ms ({DELAY_MS + 50:.0f} ms) | worst {v['maxmax']:.1f} ms | {yes(v['maxmax'] <= DELAY_MS + 50)} |")
    instr = os.path.join(outdir, "instr.md")
    if os.path.exists(instr):
        p("\n" + open(instr).read())
    print("\n".join(out))

    # chart
    targets = []
    for sc in HIT:
        for t in rows.get(sc, {}):
            if t not in targets:
                targets.append(t)
    if not targets:
        return
    with open(os.path.join(outdir, "chart.dat"), "w") as f:
        f.write("scenario\t" + "\t".join(targets) + "\n")
        for sc in HIT:
            if sc not in rows:
                continue
            f.write(sc + "\t" + "\t".join(fr(rows[sc].get(t, {}).get("rps", float("nan"))) for t in targets) + "\n")
        f.write("\n\n")
        f.write("scenario\t" + "\t".join(targets) + "\n")
        for sc in HIT:
            if sc not in rows:
                continue
            f.write(sc + "\t" + "\t".join(fr(rows[sc].get(t, {}).get("p99", float("nan")), 3) for t in targets) + "\n")
    n = len(targets)
    cols = ", ".join(f"'chart.dat' index IDX using {i + 2}:xtic(1) title columnheader({i + 2})" for i in range(n))
    gp = f"""set terminal pngcairo size 1400,900 font ",11"
set output 'perf.png'
set datafile separator "\\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside right top vertical
set grid ytics
set multiplot layout 2,1 title "strata vs peers, hit path ({date}; 1 server core, wrk on the other)"
set title "requests/s (median; higher is better)"
set ylabel "req/s"
set yrange [0:*]
plot {cols.replace('IDX', '0')}
set title "p99 latency, ms (median; lower is better; log scale)"
set ylabel "p99 ms"
set logscale y
set yrange [*:*]
plot {cols.replace('IDX', '1')}
unset multiplot
"""
    with open(os.path.join(outdir, "chart.gp"), "w") as f:
        f.write(gp)


if __name__ == "__main__":
    main()
