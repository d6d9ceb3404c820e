/*
 * regs.c -- CPU register state workload for stasis (x86-64 only).
 *
 * Usage: regs DIR        (DIR is unused)
 * Env:   WL_REGS_LEVEL=1 (SSE) or 2 (AVX) forces a lower level than the CPU has.
 *
 * Sets up: MXCSR = 0xFF80 (round toward zero + FTZ, all exceptions masked),
 * x87 control word = 0x0E7F (truncate, double precision), a __thread array
 * with a pattern (fs_base), then one inline-asm block that
 *   - writes "ready <pid>\n" itself (write syscall), then
 *   - loads known distinct patterns into rax rbx rcx rdx rsi rdi r8-r15,
 *     the x87 stack st0-st7, and xmm0-15 (SSE only), ymm0-15 (AVX), or
 *     zmm0-31 + k1-k7 (AVX-512F; k regs 64-bit with AVX-512BW, else 16-bit),
 *   - busy-spins incrementing a memory counter until the SIGTERM handler
 *     sets a volatile flag (no calls, no registers used by the loop),
 *   - stores every register back to memory.
 * Verifies (in C, after the asm): every register equals its pattern, MXCSR
 * and the x87 control word are unchanged, the __thread array holds its
 * pattern at the same address and ARCH_GET_FS / ARCH_GET_GS are unchanged,
 * and the spin counter is > 0.
 *
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o regs regs.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <asm/prctl.h>
#include <sys/syscall.h>

#if !defined(__x86_64__)
#error "regs.c is x86-64 only"
#endif

/* Globals referenced by name from the asm (external linkage on purpose). */
volatile sig_atomic_t wl_got_term;
uint64_t wl_spin_count;
char wl_ready_msg[64];
uint64_t wl_ready_len;
int64_t wl_ready_ret;
unsigned char wl_vin[32][64] __attribute__((aligned(64)));
unsigned char wl_vout[32][64] __attribute__((aligned(64)));
uint64_t wl_gin[14], wl_gout[14];
uint64_t wl_kin[8], wl_kout[8];
unsigned char wl_fin[8][16] __attribute__((aligned(16)));
unsigned char wl_fout[8][16] __attribute__((aligned(16)));

static const char *const gpr_names[14] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9",
	"r10", "r11", "r12", "r13", "r14", "r15",
};

static __thread uint64_t tls_pat[16];

/* not wl.h's on_term: the spin loop in the asm reads wl_got_term */
static void on_term_asm(int sig) { (void)sig; wl_got_term = 1; }

/* ---- asm fragments ---- */
#define WRITE_READY \
	"mov $1, %%eax\n\t" \
	"mov $1, %%edi\n\t" \
	"lea wl_ready_msg(%%rip), %%rsi\n\t" \
	"mov wl_ready_len(%%rip), %%rdx\n\t" \
	"syscall\n\t" \
	"mov %%rax, wl_ready_ret(%%rip)\n\t"

#define LDF(i) "fldt wl_fin+" #i "*16(%%rip)\n\t"
#define STF(i) "fstpt wl_fout+" #i "*16(%%rip)\n\t"
#define LOAD_X87 LDF(0) LDF(1) LDF(2) LDF(3) LDF(4) LDF(5) LDF(6) LDF(7)
/* st0 holds fin[7] ... st7 holds fin[0]; pop in that order */
#define STORE_X87 STF(7) STF(6) STF(5) STF(4) STF(3) STF(2) STF(1) STF(0)

#define LDG(i, r) "mov wl_gin+" #i "*8(%%rip), %%" #r "\n\t"
#define STG(i, r) "mov %%" #r ", wl_gout+" #i "*8(%%rip)\n\t"
#define LOAD_GPR LDG(0, rax) LDG(1, rbx) LDG(2, rcx) LDG(3, rdx) LDG(4, rsi) LDG(5, rdi) \
	LDG(6, r8) LDG(7, r9) LDG(8, r10) LDG(9, r11) LDG(10, r12) LDG(11, r13) LDG(12, r14) LDG(13, r15)
#define STORE_GPR STG(0, rax) STG(1, rbx) STG(2, rcx) STG(3, rdx) STG(4, rsi) STG(5, rdi) \
	STG(6, r8) STG(7, r9) STG(8, r10) STG(9, r11) STG(10, r12) STG(11, r13) STG(12, r14) STG(13, r15)

#define SPIN \
	"1:\n\t" \
	"addq $1, wl_spin_count(%%rip)\n\t" \
	"pause\n\t" \
	"cmpl $0, wl_got_term(%%rip)\n\t" \
	"je 1b\n\t"

#define X16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define X16H(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define K7(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define LDX(i) "movdqu wl_vin+" #i "*64(%%rip), %%xmm" #i "\n\t"
#define STX(i) "movdqu %%xmm" #i ", wl_vout+" #i "*64(%%rip)\n\t"
#define LDY(i) "vmovdqu wl_vin+" #i "*64(%%rip), %%ymm" #i "\n\t"
#define STY(i) "vmovdqu %%ymm" #i ", wl_vout+" #i "*64(%%rip)\n\t"
#define LDZ(i) "vmovdqu64 wl_vin+" #i "*64(%%rip), %%zmm" #i "\n\t"
#define STZ(i) "vmovdqu64 %%zmm" #i ", wl_vout+" #i "*64(%%rip)\n\t"
#define LDKQ(i) "kmovq wl_kin+" #i "*8(%%rip), %%k" #i "\n\t"
#define STKQ(i) "kmovq %%k" #i ", wl_kout+" #i "*8(%%rip)\n\t"
#define LDKW(i) "kmovw wl_kin+" #i "*8(%%rip), %%k" #i "\n\t"
#define STKW(i) "kmovw %%k" #i ", wl_kout+" #i "*8(%%rip)\n\t"

#define GPR_CLOBBERS "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", \
	"r12", "r13", "r14", "r15"
#define X87_CLOBBERS "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
#define XMM_HI_CLOBBERS "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", \
	"xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
#define K_CLOBBERS "k1", "k2", "k3", "k4", "k5", "k6", "k7"

static __attribute__((noinline)) void spin_sse(void)
{
	__asm__ volatile(WRITE_READY LOAD_X87 X16(LDX) LOAD_GPR SPIN STORE_GPR X16(STX) STORE_X87
			 : : : GPR_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS, "memory", "cc");
}

static __attribute__((noinline, target("avx"))) void spin_avx(void)
{
	__asm__ volatile(WRITE_READY LOAD_X87 X16(LDY) LOAD_GPR SPIN STORE_GPR X16(STY) STORE_X87
			 "vzeroupper\n\t"
			 : : : GPR_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS, "memory", "cc");
}

static __attribute__((noinline, target("avx512f"))) void spin_avx512(int bw)
{
	if (bw)
		__asm__ volatile(WRITE_READY LOAD_X87 X16(LDZ) X16H(LDZ) K7(LDKQ) LOAD_GPR SPIN
				 STORE_GPR X16(STZ) X16H(STZ) K7(STKQ) STORE_X87 "vzeroupper\n\t"
				 : : : GPR_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS, XMM_HI_CLOBBERS,
				   K_CLOBBERS, "memory", "cc");
	else
		__asm__ volatile(WRITE_READY LOAD_X87 X16(LDZ) X16H(LDZ) K7(LDKW) LOAD_GPR SPIN
				 STORE_GPR X16(STZ) X16H(STZ) K7(STKW) STORE_X87 "vzeroupper\n\t"
				 : : : GPR_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS, XMM_HI_CLOBBERS,
				   K_CLOBBERS, "memory", "cc");
}

static uint64_t get_base(int code)
{
	unsigned long v = 0;
	if (syscall(SYS_arch_prctl, code, &v) != 0)
		FAIL("arch_prctl(0x%x): %s", code, strerror(errno));
	return v;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term_asm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL)) {
		out("FAIL: setup: sigaction: %s\n", strerror(errno));
		return 2;
	}

	__builtin_cpu_init();
	int level = 1, bw = 0;
	if (__builtin_cpu_supports("avx"))
		level = 2;
	if (__builtin_cpu_supports("avx512f")) {
		level = 3;
		bw = __builtin_cpu_supports("avx512bw");
	}
	/* WL_REGS_LEVEL=1|2 forces a lower level (testing the other paths) */
	const char *force = getenv("WL_REGS_LEVEL");
	if (force && atoi(force) >= 1 && atoi(force) < level)
		level = atoi(force);
	int nvec = level == 3 ? 32 : 16;
	size_t vbytes = level == 1 ? 16 : level == 2 ? 32 : 64;

	/* patterns: every byte of every register distinct per register */
	for (int r = 0; r < 32; r++)
		for (int w = 0; w < 8; w++)
			memcpy(&wl_vin[r][w * 8], &(uint64_t){ pat(1000 + r, w) }, 8);
	for (int r = 0; r < 14; r++)
		wl_gin[r] = pat(2000, r);
	wl_kin[0] = 0;
	for (int r = 1; r < 8; r++)
		wl_kin[r] = bw ? pat(3000, r) : (pat(3000, r) & 0xffff);
	for (int r = 0; r < 8; r++) {
		long double v = (1.0L + r) / 7.0L * (r & 1 ? -1e30L : 1e-30L) * (r + 3);
		memset(wl_fin[r], 0, 16);
		memcpy(wl_fin[r], &v, 10);
	}
	memset(wl_vout, 0, sizeof wl_vout);
	memset(wl_gout, 0, sizeof wl_gout);
	memset(wl_kout, 0, sizeof wl_kout);
	memset(wl_fout, 0, sizeof wl_fout);

	for (int i = 0; i < 16; i++)
		tls_pat[i] = pat(4000, i);
	uintptr_t tls_addr = (uintptr_t)&tls_pat[0];
	uint64_t fs0 = get_base(ARCH_GET_FS), gs0 = get_base(ARCH_GET_GS);

	int n = snprintf(wl_ready_msg, sizeof wl_ready_msg, "ready %d\n", (int)getpid());
	wl_ready_len = (uint64_t)n;
	fprintf(stderr, "regs: level %s%s\n", level == 1 ? "sse" : level == 2 ? "avx" : "avx512f",
		level == 3 ? (bw ? "+bw (64-bit k regs)" : " (16-bit k regs)") : "");

	const uint32_t mxcsr_set = 0xFF80; /* FTZ | RZ | all masked */
	const uint16_t fcw_set = 0x0E7F;   /* RC=truncate, PC=double, all masked */
	uint32_t mxcsr_got = 0;
	uint16_t fcw_got = 0;
	__asm__ volatile("fldcw %0" : : "m"(fcw_set));
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_set));

	if (level == 3)
		spin_avx512(bw);
	else if (level == 2)
		spin_avx();
	else
		spin_sse();

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_got));
	__asm__ volatile("fnstcw %0" : "=m"(fcw_got));
	/* back to defaults before any C library code runs */
	const uint32_t mxcsr_def = 0x1F80;
	const uint16_t fcw_def = 0x037F;
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_def));
	__asm__ volatile("fldcw %0" : : "m"(fcw_def));

	if (wl_ready_ret != (int64_t)wl_ready_len)
		FAIL("ready write returned %lld", (long long)wl_ready_ret);

	for (int r = 0; r < 14; r++)
		if (wl_gout[r] != wl_gin[r])
			FAIL("%s: expected 0x%016llx got 0x%016llx", gpr_names[r],
			     (unsigned long long)wl_gin[r], (unsigned long long)wl_gout[r]);
	for (int r = 0; r < nvec; r++)
		for (size_t b = 0; b < vbytes; b++)
			if (wl_vout[r][b] != wl_vin[r][b])
				FAIL("%s%d byte %zu: expected 0x%02x got 0x%02x",
				     level == 1 ? "xmm" : level == 2 ? "ymm" : "zmm", r, b,
				     wl_vin[r][b], wl_vout[r][b]);
	if (level == 3)
		for (int r = 1; r < 8; r++)
			if (wl_kout[r] != wl_kin[r])
				FAIL("k%d: expected 0x%016llx got 0x%016llx", r,
				     (unsigned long long)wl_kin[r], (unsigned long long)wl_kout[r]);
	for (int r = 0; r < 8; r++)
		for (int b = 0; b < 10; b++)
			if (wl_fout[r][b] != wl_fin[r][b])
				FAIL("x87 st(%d) byte %d: expected 0x%02x got 0x%02x", 7 - r, b,
				     wl_fin[r][b], wl_fout[r][b]);
	if (mxcsr_got != mxcsr_set)
		FAIL("MXCSR: expected 0x%04x got 0x%04x", mxcsr_set, mxcsr_got);
	if (fcw_got != fcw_set)
		FAIL("x87 control word: expected 0x%04x got 0x%04x", fcw_set, fcw_got);

	if ((uintptr_t)&tls_pat[0] != tls_addr)
		FAIL("__thread variable moved: expected %p got %p", (void *)tls_addr, (void *)&tls_pat[0]);
	uint64_t fs1 = get_base(ARCH_GET_FS), gs1 = get_base(ARCH_GET_GS);
	if (fs1 != fs0)
		FAIL("fs_base: expected 0x%llx got 0x%llx", (unsigned long long)fs0, (unsigned long long)fs1);
	if (gs1 != gs0)
		FAIL("gs_base: expected 0x%llx got 0x%llx", (unsigned long long)gs0, (unsigned long long)gs1);
	for (int i = 0; i < 16; i++)
		if (tls_pat[i] != pat(4000, i))
			FAIL("__thread tls_pat[%d]: expected 0x%016llx got 0x%016llx", i,
			     (unsigned long long)pat(4000, i), (unsigned long long)tls_pat[i]);

	if (wl_spin_count == 0)
		FAIL("spin counter is 0 (loop never ran?)");
	fprintf(stderr, "regs: spin count %llu\n", (unsigned long long)wl_spin_count);
	out("PASS\n");
	return 0;
}
