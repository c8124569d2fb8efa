#!/bin/sh
# otns's guest init: PID 1 in place of virtme-ng's virtme-ng-init (see vm/guest_init.py).
#
# It keeps virtme-ng's contract with the host: the command vng passes on the kernel command
# line (virtme.exec=`BASE64`) runs with its stdin, stdout and stderr on the virtio-serial
# ports virtme.stdin/stdout/stderr, its exit status goes to the port virtme.ret, and the
# folders named by virtme_initmountN are mounted. It skips what otns does not use and what
# costs most under TCG: the eight overlay mounts (they fail on a module-less kernel), the
# systemd-tmpfiles run, and udev's coldplug and settle (~4 s), which virtme-ng-init waits
# for only because it finds the ports through udev's symlinks; here they are found in sysfs.
# The guest ends with reboot(2) under QEMU's -no-reboot, so no ACPI is needed to stop it.
#
# Everything it reads comes from the kernel command line vng built (vm.vngsafe checks the
# values otns gives vng); it runs no value as code except the command itself.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# A static busybox (which virtme-ng needs on the host anyway) starts several times faster
# under TCG than the dynamically linked tools; use its applets where it is there.
BB=
[ -x /bin/busybox ] && BB=/bin/busybox

log() { echo "otns-init: $*" > /dev/kmsg 2>/dev/null || echo "otns-init: $*"; }

FSTAB=/run/otns-fstab
mnt() {  # TYPE TARGET [OPTIONS]: list a kernel file system for the one mount -a below
    [ -d "$2" ] || return 0  # sysfs shows e.g. /sys/kernel/config only when configfs is built in
    echo "$1 $2 $1 ${3:-defaults} 0 0" >> "$FSTAB"
}

# The same kernel file systems virtme-ng-init mounts, so the suite sees the same guest.
$BB mount -t proc -o nosuid,noexec,nodev proc /proc
$BB mount -t sysfs -o nosuid,noexec,nodev sysfs /sys
$BB mount -t devtmpfs -o nosuid,noexec devtmpfs /dev
$BB mount -t tmpfs -o mode=0755 run /run
$BB mkdir /dev/pts /dev/shm
mnt cgroup2 /sys/fs/cgroup
mnt configfs /sys/kernel/config
mnt debugfs /sys/kernel/debug
mnt tracefs /sys/kernel/tracing
mnt securityfs /sys/kernel/security
mnt devpts /dev/pts nosuid,noexec
mnt tmpfs /dev/shm nosuid,nodev
# One command for them all: each command started costs ~30 ms under TCG. mount -a goes on past
# an entry that fails and names it on the console.
[ -f "$FSTAB" ] && { $BB mount -a -T "$FSTAB" || log "not every kernel file system mounted"; }
$BB ln -s /proc/self/fd /dev/fd
$BB ln -s /proc/self/fd/0 /dev/stdin
$BB ln -s /proc/self/fd/1 /dev/stdout
$BB ln -s /proc/self/fd/2 /dev/stderr

[ -n "$virtme_hostname" ] && echo "$virtme_hostname" > /proc/sys/kernel/hostname
[ -n "$nr_open" ] && echo "$nr_open" > /proc/sys/fs/nr_open
read -r release < /proc/sys/kernel/osrelease
if [ -n "$virtme_link_mods" ]; then  # the kernel's modules, where modprobe looks for them
    $BB mount -t tmpfs none /lib/modules 2>/dev/null && $BB ln -s "$virtme_link_mods" "/lib/modules/$release"
fi

# Host folders: virtme_initmountN=GUEST_PATH, _fstype and _access beside it.
n=0
while :; do
    eval "path=\${virtme_initmount$n-} fstype=\${virtme_initmount${n}_fstype:-9p} access=\${virtme_initmount${n}_access:-rw}"
    [ -n "$path" ] || break
    $BB mkdir -p "$path"
    if [ "$fstype" = virtiofs ]; then
        $BB mount -t virtiofs -o "$access" "virtme.initmount$n" "$path" || log "cannot mount $path"
    else
        $BB mount -t 9p -o "$access,version=9p2000.L,trans=virtio,access=any,msize=524288" \
            "virtme.initmount$n" "$path" || log "cannot mount $path"
    fi
    n=$((n + 1))
done

# The command's ports, by the names QEMU gave them (the names can arrive after init starts).
stdin= stdout= stderr= ret=
tries=0
while :; do
    for d in /sys/class/virtio-ports/*; do
        [ -r "$d/name" ] || continue
        read -r name < "$d/name" 2>/dev/null || continue
        case $name in
            virtme.stdin) stdin=/dev/${d##*/} ;;
            virtme.stdout) stdout=/dev/${d##*/} ;;
            virtme.stderr) stderr=/dev/${d##*/} ;;
            virtme.ret) ret=/dev/${d##*/} ;;
        esac
    done
    [ -n "$stdin" ] && [ -n "$stdout" ] && [ -n "$stderr" ] && [ -n "$ret" ] && break
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        log "the command's virtio-serial ports never appeared"
        stdin=/dev/null stdout=/dev/console stderr=/dev/console ret=/dev/null
        break
    fi
    $BB sleep 0.05
done

read -r cmdline < /proc/cmdline
script=
case $cmdline in
    *'virtme.exec=`'*)
        script=${cmdline#*virtme.exec=\`}
        script=${script%%\`*} ;;
esac
status=1
if [ -n "$script" ] && printf %s "$script" | $BB base64 -d > /run/otns-guest-command; then
    [ -n "$virtme_chdir" ] && cd "/$virtme_chdir"
    # A fresh environment, as virtme-ng-init gives (it drops its own virtme_* variables).
    $BB env -i HOME=/root TERM=linux PATH="$PATH" $BB setsid /bin/sh /run/otns-guest-command \
        < "$stdin" > "$stdout" 2> "$stderr" &
    wait $!
    status=$?
else
    log "no command on the kernel command line"
fi
printf %s "$status" > "$ret"

sync
# reboot(2) without init's help; QEMU runs with -no-reboot, so this ends it.
$BB reboot -f 2>/dev/null || reboot -f -f 2>/dev/null
echo b > /proc/sysrq-trigger
# Only if every way failed: PID 1 exits, the kernel panics, and panic=-1 reboots.
exit "$status"
