"""docs/cluster.md from the results scripts/cluster.sh left in its directory."""
import datetime
import json
import sys

d, alive, status = sys.argv[1], sys.argv[2], sys.argv[3]
a1_down, dropped, reaped = sys.argv[4], sys.argv[5], sys.argv[6]


def load(name):
    try:
        with open(f"{d}/{name}") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


p = load("partition.json")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print("# Gantry as a cluster\n")
print(f"Measured by `make cluster` (`scripts/cluster.sh`) on {now}, release builds, on one machine")
print("of two cores: every host a network namespace of its own joined to a bridge namespace by a")
print("veth pair — PostgreSQL and RabbitMQ on `db`, HAProxy on `lb` (checking `/ready` every 500 ms),")
print("two gantry-api on `a1` and `a2`, three gantry-worker on `w1`–`w3`, the load from `cl`, all")
print("under one supervisord. Every worker reaches the one Docker engine of the machine through its")
print("socket (a unix socket crosses network namespaces), so the step containers of all the workers")
print("share two cores: the scaling rows show the orchestration, not more hardware.\n")
print("## Partition\n")
print("200 two-step changes (the first step sleeps 1 s and adds a key to the environment's")
print("properties) through the load balancer, one every 150 ms; 5 s in, api host `a1` is cut off")
print("(its veth link down on the bridge) for 15 s; 10 s in, worker host `w1` for 25 s, past its")
print("10 s lease. Checked as in docs/reliability.md: lost, duplicated, overlapping attempts")
print("(from a container given its step to its die event), I4 on the property versions,")
print("dead-lettered messages, drained.\n")
if p is None:
    print("gantry-loadtest failed before its report; see .local/cluster/partition.log\n")
else:
    i4 = "yes" if p["patches_not_once"] == 0 and p["versions_contiguous"] and p["last_version_is_current"] else "NO"
    verdict = "pass" if status == "0" else "FAIL"
    print("| accepted | final | succeeded | lost | duplicated | overlapping | I4 | submissions retried "
          "| 503 / 502, 504 of the proxy / other 5xx | dead-lettered | drained | recovery | workers alive after | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {p['accepted']} of {p['submitted']} | {p['final_']} | {p['succeeded']} | {p['lost']} | "
          f"{p['duplicated']} | {p['overlapping']} | {i4} ({p['versions']} versions) | "
          f"{p['retried_submissions']} | {p['unavailable_answers']} / {p['gateway_answers']} / {p['server_errors']} | "
          f"{p['dead_lettered']} | {'yes' if p['drained'] else 'no'} | {p['recovery_seconds']:.1f} s | "
          f"{alive} of 3 | {verdict} |\n")
    print(f"The faults as the processes saw them: HAProxy took `a1` out {a1_down} time(s) (its checks")
    print(f"timing out) and back once it answered; the other workers' reapers re-queued {reaped} step(s)")
    print(f"whose lease `w1` could not renew, and `w1`, back on the network, dropped {dropped} outcome(s)")
    print("of attempts it no longer owned.\n")
print("## Scaling\n")
print("`gantry-loadtest steps`: 16 changes of 4 trivial steps at once (64 steps), each worker")
print("running at most 4 steps at once; beside it the raw churn of this machine: hardened")
print("containers created, started, waited for and removed, 8 at a time, without Gantry.\n")
print("| workers | steps at once | steps/s | a step, claim → result applied (p50) | ÷ raw churn |")
print("|---|---|---|---|---|")
raw = load("raw.json")
churn = raw["raw"]["churn"]["per_second"] if raw and raw.get("raw") else None
for n in (1, 2, 3):
    s = load(f"steps-{n}.json")
    s = s.get("steps") if s else None
    if s is None:
        print(f"| {n} | {4 * n} | failed | | |")
        continue
    ratio = f"{s['steps_per_second'] / churn:.2f}" if churn else "n/a"
    print(f"| {n} | {4 * n} | {s['steps_per_second']:.2f} | {s['step_latency']['p50_ms']:.0f} ms | {ratio} |")
if churn:
    print(f"| raw churn, no Gantry | 8 | {churn:.2f} | | 1.00 |")
    print()
    print("Every worker shares the machine's one Docker engine and two cores, which the raw churn")
    print("already saturates: more workers run more steps at once but cannot make containers start")
    print("faster here. On hosts of their own, each worker brings its own engine and cores.")
