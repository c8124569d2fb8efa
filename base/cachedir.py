"""The names in otns's cache folder (~/.cache/otns, --cache-dir), each with who writes it. Every
layer keeps something there; naming them in one place keeps two from taking the same name and
tells a reader what each is before they delete it. Free of imports, like base.filenames."""

# kernels/
APT = "apt"  # the private apt of Debian's archive (kernels.apt): lists, downloaded packages, its lock
INDEX = "kernels.json"  # in APT: the parsed index of kernels, keyed by the lists' signature (kernels.catalog)
KERNELS = "kernels"  # one folder per fetched Debian kernel, and a lock per kernel (kernels.fetch)
SOURCES = "sources"  # linux-source tarballs, a lock per series (kernels.source)
TREES = "trees"  # kernel trees unpacked from them (kernels.build)
BUILDS = "builds"  # build logs of trees with no log given (kernels.build)
CCACHE = "ccache"  # ccache's folder for builds; CCACHE_GCOV for coverage builds (kernels.build, kernels.coverage)
CCACHE_GCOV = "ccache-gcov"
COVERAGE = "coverage"  # copies of trees built with gcov (kernels.coverage)
TOOLS = "tools"  # tools otns unpacks or wraps: tools/cc (kernels.build), tools/virtiofsd (vm.virtiofsd)
TOOLS_LOCK = "tools.lock"  # held while a tool is unpacked (otns.run)

# vm/
STAGE = "stage"  # private folders of safe-named links for vng (vm.vngsafe)
PYCACHE = "pycache"  # the bytecode the host compiles for the guest (vm.pycache)
VNG_HOME = "vng-home"  # HOME for vng, so a user's vng config cannot change the run (otns.run)
KVM_PROBE = "kvm-probe.json"  # whether KVM works here, per kernel and QEMU (vm.accel)
BOOT_TIMES = "boot-times.json"  # recent boot times per accelerator (vm.boot_times)

# otns/
MATRIX_TIMES = "matrix-times.json"  # each kernel's last run times, for the matrix's start order (otns.matrix.order)
BENCH = "bench"  # the compiled bench helper, per source and compiler (otns.bench)
BISECT_RUN = "bisect-run"  # the results of `otns bisect-run`, per tree (otns.bisect.tree)
