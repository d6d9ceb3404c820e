/*
 * files.c -- file descriptor and process fs/attribute state for stasis.
 *
 * Usage: files DIR
 *
 * Closes every inherited fd above 2, then sets up in DIR:
 *   fd  3  DIR/a.txt   O_RDONLY                     offset 1234
 *   fd  7  DIR/log.txt O_WRONLY|O_APPEND            "before\n" written
 *   fd  9  DIR/rw.bin  O_RDWR|O_CREAT, 3 pages      offset 5000
 *   fd 12  /dev/null   O_WRONLY
 *   fd 13  /dev/zero   O_RDONLY
 *   fd 20  DIR         O_RDONLY|O_DIRECTORY
 *   fd 42  DIR/a.txt   O_RDONLY|O_CLOEXEC|O_NONBLOCK offset 10
 * (a.txt holds "0\n1\n2\n...9999\n"; rw.bin a byte pattern), then
 * chdir(DIR/sub), umask(027), RLIMIT_NOFILE soft 500, RLIMIT_CORE soft 0,
 * RLIMIT_STACK soft 16 MiB (hard limits unchanged), PR_SET_NAME "wl-files",
 * personality(PER_LINUX | ADDR_NO_RANDOMIZE).
 *
 * On SIGTERM verifies: the open fd set is exactly the setup one (0-2 as
 * inherited + the 7 above; /proc/self/fd scan), each fd's F_GETFL (access
 * mode, O_APPEND, O_NONBLOCK, and equal to the value at setup), F_GETFD
 * (FD_CLOEXEC only on 42), offset, st_dev/st_ino (and st_rdev for the
 * devices); reads on fds 3 and 42 continue with the right text; "after\n"
 * written to fd 7 appends (log.txt == "before\nafter\n"); fd 9 contents
 * and reads from 5000; /dev/null swallows, /dev/zero gives zeros; fd 20 is
 * a directory; getcwd, umask, the 3 rlimits, PR_GET_NAME, personality.
 *
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o files files.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static inline unsigned char patb(size_t off) { return (unsigned char)(pat(9, off / 8) >> (8 * (off % 8))); }

static char text[64 * 1024];
static size_t text_len;
#define RW_LEN (3 * 4096)

struct fdspec {
	int fd;
	const char *name;
	int acc;       /* O_RDONLY / O_WRONLY / O_RDWR */
	int extra;     /* expected O_APPEND|O_NONBLOCK bits */
	int cloexec;
	off_t pos;     /* expected offset at verify, -1: don't check (char devs) */
	/* recorded at setup */
	int fl, fdfl;
	dev_t dev, rdev;
	ino_t ino;
	mode_t mode;
};

static struct fdspec fds[] = {
	{ 3, "a.txt", O_RDONLY, 0, 0, 1234, 0, 0, 0, 0, 0, 0 },
	{ 7, "log.txt", O_WRONLY, O_APPEND, 0, 7, 0, 0, 0, 0, 0, 0 },
	{ 9, "rw.bin", O_RDWR, 0, 0, 5000, 0, 0, 0, 0, 0, 0 },
	{ 12, "/dev/null", O_WRONLY, 0, 0, -1, 0, 0, 0, 0, 0, 0 },
	{ 13, "/dev/zero", O_RDONLY, 0, 0, -1, 0, 0, 0, 0, 0, 0 },
	{ 20, "DIR", O_RDONLY, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	{ 42, "a.txt (2)", O_RDONLY, O_NONBLOCK, 1, 10, 0, 0, 0, 0, 0, 0 },
};
#define NFDS (int)(sizeof fds / sizeof fds[0])

static int std_open[3];

static void place(int target, const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);
	if (fd < 0)
		SETUP_FAIL("open %s: %s", path, strerror(errno));
	if (fd != target) {
		if (dup3(fd, target, flags & O_CLOEXEC) != target)
			SETUP_FAIL("dup3 %d -> %d: %s", fd, target, strerror(errno));
		close(fd);
	}
}

static void write_all(int fd, const void *buf, size_t len, const char *what)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			SETUP_FAIL("write %s: %s", what, strerror(errno));
		}
		p += w;
		len -= w;
	}
}

/* fills set[fd]=1 for every open fd (up to 1024), excluding the scan fd */
static void scan_fds(unsigned char *set, int maxfd)
{
	memset(set, 0, maxfd);
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		FAIL("open /proc/self/fd: %s", strerror(errno));
	char buf[8192];
	for (;;) {
		long n = syscall(SYS_getdents64, d, buf, sizeof buf);
		if (n < 0)
			FAIL("getdents64 /proc/self/fd: %s", strerror(errno));
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			off += de->d_reclen;
			if (de->d_name[0] == '.')
				continue;
			int fd = atoi(de->d_name);
			if (fd == d)
				continue;
			if (fd >= maxfd)
				FAIL("open fd %d beyond %d", fd, maxfd);
			set[fd] = 1;
		}
	}
	close(d);
}

static char cwd0[PATH_MAX];
static struct rlimit rl0[3];
static const int rl_res[3] = { RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK };
static const char *const rl_name[3] = { "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_STACK" };
static unsigned long pers0;

static void set_soft(int res, rlim_t soft)
{
	struct rlimit r;
	if (getrlimit(res, &r))
		SETUP_FAIL("getrlimit: %s", strerror(errno));
	if (r.rlim_max != RLIM_INFINITY && soft > r.rlim_max)
		soft = r.rlim_max;
	r.rlim_cur = soft;
	if (setrlimit(res, &r))
		SETUP_FAIL("setrlimit(%d): %s", res, strerror(errno));
}

static void read_exact(int fd, void *buf, size_t len, const char *what)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			FAIL("read %s: %s", what, strerror(errno));
		}
		if (r == 0)
			FAIL("read %s: EOF after %zu of %zu bytes", what, got, len);
		got += r;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		SETUP_FAIL("usage: files DIR");
	char dir[PATH_MAX], path[PATH_MAX + 32];
	if (!realpath(argv[1], dir))
		SETUP_FAIL("realpath %s: %s", argv[1], strerror(errno));

	wl_catch_term();
	sigset_t waitmask;
	wl_block_term(&waitmask);

	/* close everything inherited above 2 */
	{
		unsigned char set[1024];
		scan_fds(set, 1024);
		for (int fd = 3; fd < 1024; fd++)
			if (set[fd])
				close(fd);
		for (int fd = 0; fd < 3; fd++)
			std_open[fd] = set[fd];
	}

	/* files */
	for (int i = 0; i < 10000; i++)
		text_len += snprintf(text + text_len, sizeof text - text_len, "%d\n", i);
	snprintf(path, sizeof path, "%s/a.txt", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			SETUP_FAIL("create a.txt: %s", strerror(errno));
		write_all(fd, text, text_len, "a.txt");
		close(fd);
	}
	place(3, path, O_RDONLY, 0);
	if (lseek(3, 1234, SEEK_SET) != 1234)
		SETUP_FAIL("lseek fd 3: %s", strerror(errno));
	place(42, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (lseek(42, 10, SEEK_SET) != 10)
		SETUP_FAIL("lseek fd 42: %s", strerror(errno));

	snprintf(path, sizeof path, "%s/log.txt", dir);
	place(7, path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
	write_all(7, "before\n", 7, "log.txt");

	snprintf(path, sizeof path, "%s/rw.bin", dir);
	place(9, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	{
		static unsigned char rw[RW_LEN];
		for (size_t i = 0; i < RW_LEN; i++)
			rw[i] = patb(i);
		write_all(9, rw, RW_LEN, "rw.bin");
	}
	if (lseek(9, 5000, SEEK_SET) != 5000)
		SETUP_FAIL("lseek fd 9: %s", strerror(errno));

	place(12, "/dev/null", O_WRONLY, 0);
	place(13, "/dev/zero", O_RDONLY, 0);
	place(20, dir, O_RDONLY | O_DIRECTORY, 0);

	/* process attributes */
	snprintf(path, sizeof path, "%s/sub", dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		SETUP_FAIL("mkdir %s: %s", path, strerror(errno));
	if (chdir(path))
		SETUP_FAIL("chdir %s: %s", path, strerror(errno));
	if (!getcwd(cwd0, sizeof cwd0))
		SETUP_FAIL("getcwd: %s", strerror(errno));
	umask(027);
	set_soft(RLIMIT_NOFILE, 500);
	set_soft(RLIMIT_CORE, 0);
	set_soft(RLIMIT_STACK, 16UL << 20);
	for (int i = 0; i < 3; i++)
		getrlimit(rl_res[i], &rl0[i]);
	if (prctl(PR_SET_NAME, "wl-files", 0, 0, 0))
		SETUP_FAIL("PR_SET_NAME: %s", strerror(errno));
	if (personality(PER_LINUX | ADDR_NO_RANDOMIZE) == -1)
		SETUP_FAIL("personality: %s", strerror(errno));
	pers0 = (unsigned long)personality(0xffffffff);
	if (pers0 != (PER_LINUX | ADDR_NO_RANDOMIZE))
		SETUP_FAIL("personality reads back 0x%lx", pers0);

	/* record fd state */
	for (int i = 0; i < NFDS; i++) {
		struct fdspec *f = &fds[i];
		struct stat st;
		f->fl = fcntl(f->fd, F_GETFL);
		f->fdfl = fcntl(f->fd, F_GETFD);
		if (f->fl < 0 || f->fdfl < 0 || fstat(f->fd, &st))
			SETUP_FAIL("fd %d (%s): %s", f->fd, f->name, strerror(errno));
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->rdev = st.st_rdev;
		f->mode = st.st_mode;
		if ((f->fl & O_ACCMODE) != f->acc || (f->fl & (O_APPEND | O_NONBLOCK)) != f->extra ||
		    !!(f->fdfl & FD_CLOEXEC) != f->cloexec)
			SETUP_FAIL("fd %d (%s): flags 0x%x fdflags 0x%x not as intended", f->fd, f->name, f->fl, f->fdfl);
	}

	out("ready %d\n", (int)getpid());
	while (!got_term)
		sigsuspend(&waitmask);

	/* ---- verify ---- */
	{
		unsigned char set[1024], want[1024];
		memset(want, 0, sizeof want);
		for (int fd = 0; fd < 3; fd++)
			want[fd] = std_open[fd];
		for (int i = 0; i < NFDS; i++)
			want[fds[i].fd] = 1;
		scan_fds(set, 1024);
		for (int fd = 0; fd < 1024; fd++) {
			if (set[fd] && !want[fd]) {
				char lnk[PATH_MAX] = "?", p[64];
				snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
				ssize_t n = readlink(p, lnk, sizeof lnk - 1);
				if (n >= 0)
					lnk[n] = 0;
				FAIL("unexpected open fd %d -> %s", fd, lnk);
			}
			if (!set[fd] && want[fd])
				FAIL("fd %d is not open any more", fd);
		}
	}

	for (int i = 0; i < NFDS; i++) {
		struct fdspec *f = &fds[i];
		int fl = fcntl(f->fd, F_GETFL), fdfl = fcntl(f->fd, F_GETFD);
		if (fl < 0 || fdfl < 0)
			FAIL("fd %d (%s): fcntl: %s", f->fd, f->name, strerror(errno));
		if ((fl & O_ACCMODE) != f->acc)
			FAIL("fd %d (%s): access mode expected %d got %d", f->fd, f->name, f->acc, fl & O_ACCMODE);
		if ((fl & (O_APPEND | O_NONBLOCK)) != f->extra)
			FAIL("fd %d (%s): O_APPEND|O_NONBLOCK bits expected 0x%x got 0x%x", f->fd, f->name,
			     f->extra, fl & (O_APPEND | O_NONBLOCK));
		if (fl != f->fl)
			FAIL("fd %d (%s): F_GETFL expected 0x%x got 0x%x", f->fd, f->name, f->fl, fl);
		if (!!(fdfl & FD_CLOEXEC) != f->cloexec)
			FAIL("fd %d (%s): FD_CLOEXEC expected %d got %d", f->fd, f->name, f->cloexec, !!(fdfl & FD_CLOEXEC));
		struct stat st;
		if (fstat(f->fd, &st))
			FAIL("fd %d (%s): fstat: %s", f->fd, f->name, strerror(errno));
		if (st.st_dev != f->dev || st.st_ino != f->ino)
			FAIL("fd %d (%s): dev/ino expected %u:%u/%lu got %u:%u/%lu", f->fd, f->name,
			     major(f->dev), minor(f->dev), (unsigned long)f->ino,
			     major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
		if ((st.st_mode & S_IFMT) != (f->mode & S_IFMT) || st.st_rdev != f->rdev)
			FAIL("fd %d (%s): file type/rdev expected 0%o/%u:%u got 0%o/%u:%u", f->fd, f->name,
			     f->mode & S_IFMT, major(f->rdev), minor(f->rdev),
			     st.st_mode & S_IFMT, major(st.st_rdev), minor(st.st_rdev));
		if (f->pos >= 0) {
			off_t pos = lseek(f->fd, 0, SEEK_CUR);
			if (pos != f->pos)
				FAIL("fd %d (%s): offset expected %lld got %lld", f->fd, f->name,
				     (long long)f->pos, (long long)pos);
		}
	}

	/* fd 3 and 42 continue reading a.txt */
	{
		char buf[200];
		read_exact(3, buf, 100, "fd 3");
		if (memcmp(buf, text + 1234, 100))
			FAIL("fd 3: read at 1234 returned \"%.20s...\", expected \"%.20s...\"", buf, text + 1234);
		if (lseek(3, 0, SEEK_CUR) != 1334)
			FAIL("fd 3: offset after read expected 1334 got %lld", (long long)lseek(3, 0, SEEK_CUR));
		read_exact(42, buf, 20, "fd 42");
		if (memcmp(buf, text + 10, 20))
			FAIL("fd 42: read at 10 returned \"%.20s\", expected \"%.20s\"", buf, text + 10);
	}
	/* fd 7 appends */
	{
		if (write(7, "after\n", 6) != 6)
			FAIL("fd 7: write: %s", strerror(errno));
		int fd = openat(20, "log.txt", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			FAIL("openat(20, log.txt): %s", strerror(errno));
		char buf[64];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n < 0)
			FAIL("read log.txt: %s", strerror(errno));
		buf[n] = 0;
		if (strcmp(buf, "before\nafter\n") != 0)
			FAIL("log.txt: expected \"before\\nafter\\n\" got \"%s\" (%zd bytes)", buf, n);
	}
	/* fd 9 */
	{
		static unsigned char rw[RW_LEN];
		read_exact(9, rw, 100, "fd 9");
		for (size_t i = 0; i < 100; i++)
			if (rw[i] != patb(5000 + i))
				FAIL("fd 9: read byte at %zu: expected 0x%02x got 0x%02x", 5000 + i, patb(5000 + i), rw[i]);
		ssize_t n = pread(9, rw, RW_LEN, 0);
		if (n != RW_LEN)
			FAIL("fd 9: pread: %zd", n);
		for (size_t i = 0; i < RW_LEN; i++)
			if (rw[i] != patb(i))
				FAIL("rw.bin byte at %zu: expected 0x%02x got 0x%02x", i, patb(i), rw[i]);
		struct stat st;
		fstat(9, &st);
		if (st.st_size != RW_LEN)
			FAIL("rw.bin size: expected %d got %lld", RW_LEN, (long long)st.st_size);
	}
	/* devices */
	{
		char z[64];
		if (write(12, "discarded", 9) != 9)
			FAIL("fd 12 (/dev/null): write: %s", strerror(errno));
		memset(z, 0x55, sizeof z);
		if (read(13, z, sizeof z) != (ssize_t)sizeof z)
			FAIL("fd 13 (/dev/zero): read: %s", strerror(errno));
		for (size_t i = 0; i < sizeof z; i++)
			if (z[i])
				FAIL("fd 13 (/dev/zero): byte %zu is 0x%02x", i, (unsigned char)z[i]);
		struct stat st;
		fstat(20, &st);
		if (!S_ISDIR(st.st_mode))
			FAIL("fd 20: not a directory (mode 0%o)", st.st_mode);
	}
	/* process attributes */
	{
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			FAIL("getcwd: %s", strerror(errno));
		if (strcmp(cwd, cwd0))
			FAIL("cwd: expected \"%s\" got \"%s\"", cwd0, cwd);
		mode_t um = umask(027);
		if (um != 027)
			FAIL("umask: expected 027 got 0%o", um);
		for (int i = 0; i < 3; i++) {
			struct rlimit r;
			getrlimit(rl_res[i], &r);
			if (r.rlim_cur != rl0[i].rlim_cur || r.rlim_max != rl0[i].rlim_max)
				FAIL("%s: expected soft %llu hard %llu got soft %llu hard %llu", rl_name[i],
				     (unsigned long long)rl0[i].rlim_cur, (unsigned long long)rl0[i].rlim_max,
				     (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
		}
		char name[32] = "";
		prctl(PR_GET_NAME, name, 0, 0, 0);
		if (strcmp(name, "wl-files"))
			FAIL("PR_GET_NAME: expected \"wl-files\" got \"%s\"", name);
		unsigned long p = (unsigned long)personality(0xffffffff);
		if (p != pers0)
			FAIL("personality: expected 0x%lx got 0x%lx", pers0, p);
	}

	out("PASS\n");
	return 0;
}
