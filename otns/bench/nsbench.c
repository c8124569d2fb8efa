/*
 * nsbench: time the creation and destruction of container-style root mount namespaces.
 *
 * Built by `otns bench` at run time with the system compiler, so the timed loop measures the
 * kernel and not an interpreter. Runs as root, in a private mount namespace of its own: nothing
 * it mounts is seen outside it, and everything goes away when it exits.
 *
 * The caller's mount table is grown to M mounts (tmpfs mounts under a tmpfs on /tmp, all shared
 * in their own peer groups, as on a systemd host). For each M, method and worker count P, P
 * forked workers each create, enter and destroy namespaces in a loop:
 *   classic             unshare(CLONE_NEWNS), make / rprivate, pivot_root, detach the old root
 *   open_tree           open_tree(rootfs, OPEN_TREE_NAMESPACE) + setns
 *   open_tree_recursive the same with AT_RECURSIVE
 *   fsmount             fsopen(tmpfs) + fsmount(FSMOUNT_NAMESPACE) + setns
 *   empty_move          open_tree(rootfs, OPEN_TREE_CLONE), unshare(UNSHARE_EMPTY_MNTNS),
 *                       move_mount onto /, chroot into it
 * and destroy it by setns back to the caller's namespace (the last reference goes).
 *
 * Output on stdout: CSV rows "method,mounts,workers,worker,iteration,ns" and "#" lines for
 * metadata ("#mounts M", "#skip METHOD reason", "#cpus N"). With --check, each namespace is
 * inspected from inside and one JSON object per method is printed instead (--leak keeps a fd
 * on each namespace: the project's tests use it to show that the check sees a leak).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#define OTNS_OPEN_TREE_NAMESPACE 2
#define OTNS_AT_RECURSIVE 0x8000
#define OTNS_OPEN_TREE_CLOEXEC O_CLOEXEC
#define OTNS_FSMOUNT_CLOEXEC 1
#define OTNS_FSMOUNT_NAMESPACE 2
#define OTNS_FSOPEN_CLOEXEC 1
#define OTNS_FSCONFIG_CMD_CREATE 6
#define OTNS_MOVE_MOUNT_F_EMPTY_PATH 4
#define OTNS_UNSHARE_EMPTY_MNTNS 0x00100000
#define TMPFS_MAGIC_ 0x01021994

#define BASE "/tmp"
#define ROOTFS BASE "/rootfs"
#define MARKER "otns-bench-root"

static int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return syscall(428, dfd, path, flags);
}
static int sys_move_mount(int fd, const char *from, int tdfd, const char *to, unsigned flags)
{
	return syscall(429, fd, from, tdfd, to, flags);
}
static int sys_fsopen(const char *fs, unsigned flags) { return syscall(430, fs, flags); }
static int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *val, int aux)
{
	return syscall(431, fd, cmd, key, val, aux);
}
static int sys_fsmount(int fd, unsigned flags, unsigned attr) { return syscall(432, fd, flags, attr); }
/* listmount(2) on a namespace by id: ENOENT once that namespace is gone. */
struct otns_mnt_id_req {
	uint32_t size, spare;
	uint64_t mnt_id, param, mnt_ns_id;
};
#define OTNS_LSMT_ROOT 0xffffffffffffffffULL
#define OTNS_NS_GET_MNTNS_ID 0x8008b705
static int ns_alive(uint64_t ns_id)
{
	struct otns_mnt_id_req req = {.size = sizeof(req), .mnt_id = OTNS_LSMT_ROOT, .mnt_ns_id = ns_id};
	uint64_t buf[1];

	if (syscall(458, &req, buf, 1, 0) >= 0)
		return 1;
	return errno == ENOENT ? 0 : -1;	/* -1: cannot tell (no listmount by namespace id) */
}

static int sys_pivot_root(const char *new_root, const char *put_old)
{
	return syscall(SYS_pivot_root, new_root, put_old);
}

enum method { CLASSIC, OPEN_TREE, OPEN_TREE_REC, FSMOUNT, EMPTY_MOVE, N_METHODS };
static const char *method_names[N_METHODS] = {
	"classic", "open_tree", "open_tree_recursive", "fsmount", "empty_move",
};

static int leak;	/* --leak: keep a fd on every namespace, to prove --check sees leaks */
static int caller_ns = -1;	/* the namespace with M mounts: where every worker returns */
static int proc_fd = -1;	/* /proc, opened before leaving, to look around from inside */

static void die(const char *what)
{
	fprintf(stderr, "nsbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Create and enter a namespace whose root is the prepared rootfs; 0 or -errno, with the
 * failing step in *step. */
static int enter(enum method m, const char **step)
{
	int fd, fs, tree;

	switch (m) {
	case CLASSIC:
		*step = "unshare(CLONE_NEWNS)";
		if (unshare(CLONE_NEWNS))
			return -errno;
		*step = "mount(/, MS_REC|MS_PRIVATE)";
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			return -errno;
		*step = "pivot_root";
		if (sys_pivot_root(ROOTFS, ROOTFS "/oldroot"))
			return -errno;
		*step = "chdir(/)";
		if (chdir("/"))
			return -errno;
		*step = "umount2(/oldroot, MNT_DETACH)";
		if (umount2("/oldroot", MNT_DETACH))
			return -errno;
		return 0;
	case OPEN_TREE:
	case OPEN_TREE_REC:
		*step = m == OPEN_TREE ? "open_tree(OPEN_TREE_NAMESPACE)" : "open_tree(OPEN_TREE_NAMESPACE|AT_RECURSIVE)";
		fd = sys_open_tree(AT_FDCWD, ROOTFS, OTNS_OPEN_TREE_NAMESPACE | OTNS_OPEN_TREE_CLOEXEC |
				   (m == OPEN_TREE_REC ? OTNS_AT_RECURSIVE : 0));
		if (fd < 0)
			return -errno;
		break;
	case FSMOUNT:
		*step = "fsopen(tmpfs)";
		fs = sys_fsopen("tmpfs", OTNS_FSOPEN_CLOEXEC);
		if (fs < 0)
			return -errno;
		*step = "fsconfig(FSCONFIG_CMD_CREATE)";
		if (sys_fsconfig(fs, OTNS_FSCONFIG_CMD_CREATE, NULL, NULL, 0)) {
			int e = errno;
			close(fs);
			return -e;
		}
		*step = "fsmount(FSMOUNT_NAMESPACE)";
		fd = sys_fsmount(fs, OTNS_FSMOUNT_NAMESPACE | OTNS_FSMOUNT_CLOEXEC, 0);
		if (fd < 0) {
			int e = errno;
			close(fs);
			return -e;
		}
		close(fs);
		break;
	case EMPTY_MOVE:
		*step = "open_tree(OPEN_TREE_CLONE)";
		tree = sys_open_tree(AT_FDCWD, ROOTFS, OPEN_TREE_CLONE | OTNS_OPEN_TREE_CLOEXEC);
		if (tree < 0)
			return -errno;
		*step = "unshare(UNSHARE_EMPTY_MNTNS)";
		if (unshare(OTNS_UNSHARE_EMPTY_MNTNS)) {
			int e = errno;
			close(tree);
			return -e;
		}
		*step = "move_mount(rootfs, /)";
		if (sys_move_mount(tree, "", AT_FDCWD, "/", OTNS_MOVE_MOUNT_F_EMPTY_PATH) ||
		    (*step = "fchdir+chroot", fchdir(tree)) || chroot(".") || chdir("/")) {
			int e = errno;
			close(tree);
			return -e;
		}
		close(tree);
		return 0;
	default:
		return -EINVAL;
	}
	*step = "setns(CLONE_NEWNS)";
	if (setns(fd, CLONE_NEWNS)) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static void leave(void)
{
	/* The namespace we leave loses its last reference here and is destroyed. */
	if (setns(caller_ns, CLONE_NEWNS))
		die("setns back to the caller's namespace");
}

static int count_lines_at(int dfd, const char *path)
{
	char buf[65536];
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC), n = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	close(fd);
	return n;
}

static int count_mounts(void) { return count_lines_at(proc_fd, "thread-self/mountinfo"); }

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3;	/* ".", ".." and the DIR's own fd */
}

/* Mount a tmpfs; its source name shows in mountinfo. */
static void mount_tmpfs(const char *source, const char *target)
{
	if (mount(source, target, "tmpfs", 0, "size=1m,mode=0755"))
		die(target);
}

/* The caller's world: a private copy of this system's mounts, made shared in peer groups of
 * its own (as systemd does), a tmpfs on /tmp holding the rootfs and the extra mounts. */
static void setup(void)
{
	if (unshare(CLONE_NEWNS))
		die("unshare(CLONE_NEWNS) for the caller's namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("making / private");
	mount_tmpfs("otns-bench", BASE);
	if (mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL))
		die("making / shared");
	if (mkdir(ROOTFS, 0755) || mkdir(BASE "/m", 0755))
		die("mkdir under " BASE);
	mount_tmpfs("otns-bench-rootfs", ROOTFS);
	if (mkdir(ROOTFS "/oldroot", 0755) || mkdir(ROOTFS "/sub", 0755))
		die("mkdir in the rootfs");
	int fd = open(ROOTFS "/" MARKER, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		die("marker");
	close(fd);
	mount_tmpfs("otns-bench-sub", ROOTFS "/sub");
	caller_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (caller_ns < 0 || proc_fd < 0)
		die("opening /proc");
}

static int extra;	/* extra mounts made so far */

/* Grow the caller's mount table to `want` mounts in all; returns the count reached. */
static int grow(int want)
{
	char path[64];
	int have = count_mounts();

	for (; have < want; have++, extra++) {
		snprintf(path, sizeof(path), BASE "/m/%d", extra);
		if (mkdir(path, 0755))
			die(path);
		mount_tmpfs("otns-bench-m", path);
	}
	return count_mounts();
}

/* Whether the kernel has the method: try it once in a child. */
static int supported(enum method m, char *why, size_t len)
{
	int pipefd[2], status;
	char msg[256] = "";
	pid_t pid;

	if (pipe(pipefd))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		const char *step = "";
		int r = enter(m, &step);
		if (r < 0)
			dprintf(pipefd[1], "%s gave %s", step, strerrorname_np(-r) ? strerrorname_np(-r) : strerror(-r));
		_exit(r < 0);
	}
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = 0;
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	snprintf(why, len, "%s", msg);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct opts {
	int max_iter, min_iter, warmup;
	double seconds;
};

/* One worker: time create+enter+destroy until max_iter or the time budget is spent. */
static int worker_loop(enum method m, const struct opts *o, uint64_t *samples)
{
	const char *step = "";
	uint64_t deadline;
	int n = 0;

	for (int i = 0; i < o->warmup; i++) {
		if (enter(m, &step) < 0)
			die(step);
		leave();
	}
	deadline = now_ns() + (uint64_t)(o->seconds * 1e9);
	while (n < o->max_iter && (n < o->min_iter || now_ns() < deadline)) {
		uint64_t t0 = now_ns();
		int r = enter(m, &step);
		if (r < 0) {
			errno = -r;
			die(step);
		}
		leave();
		samples[n++] = now_ns() - t0;
	}
	return n;
}

static void run_cell(enum method m, int mounts, int workers, const struct opts *o)
{
	int fds[workers][2], gate[2];
	pid_t pids[workers];

	if (pipe(gate))
		die("pipe");
	for (int w = 0; w < workers; w++) {
		if (pipe(fds[w]))
			die("pipe");
		pids[w] = fork();
		if (pids[w] < 0)
			die("fork");
		if (!pids[w]) {
			char c;
			uint64_t *samples = calloc(o->max_iter, sizeof(*samples));
			close(gate[1]);
			close(fds[w][0]);
			if (read(gate[0], &c, 1) < 0)	/* all workers start together */
				die("gate");
			int n = worker_loop(m, o, samples);
			FILE *out = fdopen(fds[w][1], "w");
			for (int i = 0; i < n; i++)
				fprintf(out, "%s,%d,%d,%d,%d,%llu\n", method_names[m], mounts, workers, w, i,
					(unsigned long long)samples[i]);
			fclose(out);
			_exit(0);
		}
		close(fds[w][1]);
	}
	close(gate[0]);
	close(gate[1]);	/* EOF on the gate releases every worker at once */
	for (int w = 0; w < workers; w++) {
		char buf[65536];
		ssize_t r;
		while ((r = read(fds[w][0], buf, sizeof(buf))) > 0)
			fwrite(buf, 1, r, stdout);
		close(fds[w][0]);
	}
	for (int w = 0; w < workers; w++) {
		int status;
		waitpid(pids[w], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "nsbench: a %s worker failed\n", method_names[m]);
			exit(2);
		}
	}
	fflush(stdout);
}

/* --check: create each namespace `iters` times, look at it from inside, and compare the
 * caller's state before and after. One JSON object per method. */
static void check(enum method m, int iters, int mounts)
{
	char before[1 << 16], after[1 << 16], root_source[128] = "";
	int fds_before = count_fds(), mounts_inside = -1, marker = -1, root_tmpfs = -1, other_ns = -1;
	int fds_after, ok_iters = 0, n;
	uint64_t *ids = calloc(iters, sizeof(*ids));
	int alive = 0, unknown = 0;
	struct stat caller, inside;
	const char *step = "";

	int fd = openat(proc_fd, "thread-self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = read(fd, before, sizeof(before) - 1);
	before[n > 0 ? n : 0] = 0;
	close(fd);
	fstat(caller_ns, &caller);
	for (int i = 0; i < iters; i++) {
		int r = enter(m, &step);
		if (r < 0) {
			printf("{\"method\": \"%s\", \"mounts\": %d, \"error\": \"%s gave %s\"}\n", method_names[m],
			       mounts, step, strerror(-r));
			return;
		}
		struct statfs sfs;
		mounts_inside = count_mounts();
		marker = access("/" MARKER, F_OK) == 0;
		root_tmpfs = statfs("/", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC_;
		other_ns = fstatat(proc_fd, "thread-self/ns/mnt", &inside, 0) == 0 && inside.st_ino != caller.st_ino;
		int nsfd = openat(proc_fd, "thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (nsfd >= 0) {
			if (ioctl(nsfd, OTNS_NS_GET_MNTNS_ID, &ids[i]))
				ids[i] = 0;
			if (!leak)
				close(nsfd);
		}
		/* the source of the mount at "/" in this namespace's mountinfo */
		char info[4096];
		fd = openat(proc_fd, "thread-self/mountinfo", O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, info, sizeof(info) - 1) : 0;
		info[n > 0 ? n : 0] = 0;
		if (fd >= 0)
			close(fd);
		for (char *line = strtok(info, "\n"); line; line = strtok(NULL, "\n")) {
			char point[256], source[128];
			char *dash = strstr(line, " - ");
			if (sscanf(line, "%*s %*s %*s %*s %255s", point) == 1 && !strcmp(point, "/") && dash &&
			    sscanf(dash + 3, "%*s %127s", source) == 1)
				snprintf(root_source, sizeof(root_source), "%s", source);
		}
		leave();
		ok_iters++;
	}
	struct stat back;
	int back_home = fstatat(proc_fd, "thread-self/ns/mnt", &back, 0) == 0 && back.st_ino == caller.st_ino;
	fd = openat(proc_fd, "thread-self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = read(fd, after, sizeof(after) - 1);
	after[n > 0 ? n : 0] = 0;
	close(fd);
	fds_after = count_fds();
	usleep(200000);	/* namespaces are freed after an RCU grace period */
	for (int i = 0; i < ok_iters; i++) {
		int a = ids[i] ? ns_alive(ids[i]) : -1;
		alive += a == 1;
		unknown += a == -1;
	}
	free(ids);
	printf("{\"method\": \"%s\", \"mounts\": %d, \"iterations\": %d, \"mounts_inside\": %d, \"marker\": %s, "
	       "\"root_tmpfs\": %s, \"root_source\": \"%s\", \"other_ns\": %s, \"back_home\": %s, "
	       "\"caller_mounts_unchanged\": %s, \"caller_mounts\": %d, \"fds_before\": %d, \"fds_after\": %d, "
	       "\"ns_alive_after\": %d, \"ns_unknown\": %d}\n",
	       method_names[m], mounts, ok_iters, mounts_inside, marker ? "true" : "false",
	       root_tmpfs ? "true" : "false", root_source, other_ns ? "true" : "false",
	       back_home ? "true" : "false", strcmp(before, after) ? "false" : "true", count_mounts(),
	       fds_before, fds_after, alive, unknown);
	fflush(stdout);
}

static int parse_list(const char *s, int *out, int max)
{
	int n = 0;
	char *copy = strdup(s), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
		out[n++] = atoi(t);
	free(copy);
	return n;
}

int main(int argc, char **argv)
{
	int mounts[64], n_mounts = 0, workers[16], n_workers = 0, check_iters = 0;
	int use[N_METHODS] = {1, 1, 1, 1, 1};
	struct opts o = {.max_iter = 200, .min_iter = 5, .warmup = 2, .seconds = 1.0};
	static const struct option longopts[] = {
		{"mounts", required_argument, 0, 'm'}, {"workers", required_argument, 0, 'p'},
		{"methods", required_argument, 0, 'x'}, {"max-iter", required_argument, 0, 'n'},
		{"min-iter", required_argument, 0, 'i'}, {"seconds", required_argument, 0, 's'},
		{"check", required_argument, 0, 'c'}, {"leak", no_argument, 0, 'l'}, {0, 0, 0, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': n_mounts = parse_list(optarg, mounts, 64); break;
		case 'p': n_workers = parse_list(optarg, workers, 16); break;
		case 'n': o.max_iter = atoi(optarg); break;
		case 'i': o.min_iter = atoi(optarg); break;
		case 's': o.seconds = atof(optarg); break;
		case 'c': check_iters = atoi(optarg); break;
		case 'l': leak = 1; break;
		case 'x':
			for (int m = 0; m < N_METHODS; m++) {
				char pat[64];
				snprintf(pat, sizeof(pat), ",%s,", method_names[m]);
				char list[512];
				snprintf(list, sizeof(list), ",%s,", optarg);
				use[m] = strstr(list, pat) != NULL;
			}
			break;
		default:
			fprintf(stderr, "usage: nsbench --mounts M,... [--workers P,...] [--methods a,b] "
				"[--max-iter N] [--min-iter N] [--seconds S] [--check ITERS]\n");
			return 2;
		}
	}
	if (!n_mounts)
		mounts[n_mounts++] = 0;
	if (!n_workers)
		workers[n_workers++] = 1;
	if (geteuid() != 0) {
		fprintf(stderr, "nsbench: needs root\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	setup();
	printf("#cpus %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	int ok[N_METHODS];
	for (int m = 0; m < N_METHODS; m++) {
		char why[256];
		ok[m] = use[m] && supported(m, why, sizeof(why));
		if (use[m] && !ok[m])
			printf("#skip %s %s\n", method_names[m], why);
	}
	fflush(stdout);
	for (int k = 0; k < n_mounts; k++) {
		int have = grow(mounts[k]);
		printf("#mounts %d %d\n", mounts[k], have);
		fflush(stdout);
		for (int m = 0; m < N_METHODS; m++) {
			if (!ok[m])
				continue;
			if (check_iters) {
				check(m, check_iters, have);
				continue;
			}
			for (int p = 0; p < n_workers; p++)
				run_cell(m, have, workers[p], &o);
		}
	}
	return 0;
}
