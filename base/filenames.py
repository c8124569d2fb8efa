"""The names of the files in a results folder. The guest writes some of them and imports
this module inside the VM (the checkout is on its path), so it stays free of imports; otns.results.files reads and writes them."""

# Written by the guest (vm.guest, vm.progress).
JUNIT = "junit.xml"
FEATURES = "features.json"
GUEST = "guest.json"
PROGRESS = "progress.jsonl"
GCOV = "gcov"  # a folder: the kernel's gcov counters (.gcda) after the suite, in a coverage run
# Written by the host around a run (otns.run.execute, otns.matrix.entry_test).
CONSOLE = "console.log"
CONSOLE_TAIL = "console-tail.txt"
CRASH = "crash.txt"
KTAP = "ktap.txt"
SUMMARY = "summary.json"
STATE = "state.json"
LIVE_LOG = "live.log"
# Written by otns bench (the guest's helper writes RAW and BENCH_STDERR).
BENCH_RAW = "raw.txt"
BENCH_STDERR = "nsbench.stderr"
BENCH_CSV = "bench.csv"
BENCH_MD = "bench.md"
BENCH_PNG = "bench.png"
BENCH_CHECKS = "checks.jsonl"
# otns mutate: each fault's results folder also keeps its build's and its run's log.
BUILD_LOG = "build.log"
RUN_LOG = "otns.log"
# The private folder (mode 0700) inside a results folder that holds the guest's share while
# it runs (vm.share); what the guest left is swept, then moved out of it.
GUEST_SHARE = ".otns-guest"
# Marks a folder otns made for results: only such a folder (or an empty one) is cleaned and
# shared read-write with a guest.
MARKER = ".otns-results"
# Present while a run is under way; removed once summary.json is written. Left behind by an
# interrupted or killed run, so the folder says it is incomplete.
INCOMPLETE = "INCOMPLETE"
# Folders written by otns before it marked them hold only these names.
LEGACY = frozenset({JUNIT, KTAP, CONSOLE, SUMMARY, FEATURES, GUEST, CRASH, CONSOLE_TAIL, STATE, LIVE_LOG,
                    BENCH_RAW, BENCH_RAW + ".part", BENCH_STDERR, BENCH_CSV, BENCH_MD, BENCH_PNG, BENCH_CHECKS,
                    PROGRESS})
# Names only the host writes in a results folder: a guest's file of that name is dropped, not
# moved over the host's.
HOST_WRITTEN = frozenset({CONSOLE, CONSOLE_TAIL, CRASH, KTAP, SUMMARY, STATE, LIVE_LOG, BENCH_CSV, BENCH_MD, BENCH_PNG,
                          BENCH_CHECKS, BUILD_LOG, RUN_LOG, GUEST_SHARE, MARKER, INCOMPLETE})
