/* tests/runtime/check.h — the whole "framework" for C unit tests.
 *
 * A test case is `static int test_x(void)` that returns 0 when it passes. Inside it,
 * CHECK(cond, fmt, ...) stops the case on the first failed condition and records
 * file:line, the condition text and a printf-style note with the values involved.
 * RUN(test_x) runs a case and prints "ok   test_x" or "FAIL test_x: <note>"
 * (RUN_NAMED(name, fn) for table-driven cases that share one function);
 * CHECK_SUMMARY() prints "N passed, M failed" and gives the exit status (1 if M > 0).
 *
 *     static int test_add(void) {
 *         CHECK(add(2, 2) == 4, "add(2, 2) = %d", add(2, 2));
 *         return 0;
 *     }
 *     int main(void) { RUN(test_add); return CHECK_SUMMARY(); }
 *
 * Cases may clean up before returning 0; a failing case may leak (the run fails anyway).
 */
#ifndef SKY_TESTS_CHECK_H
#define SKY_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Counters and the last failure note: one instance per test program. */
static struct {
    int  passed, failed;
    char note[4096];
} check_state_;

/* Record a failure note: "file:line: CHECK(cond): <formatted note>". */
#if defined(__GNUC__) || defined(__clang__)
static inline void check_note_(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif
static inline void check_note_(const char *file, int line, const char *cond, const char *fmt, ...) {
    int n = snprintf(check_state_.note, sizeof check_state_.note, "%s:%d: CHECK(%s): ", file, line, cond);
    if (n < 0 || (size_t)n >= sizeof check_state_.note) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_state_.note + n, sizeof check_state_.note - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            check_note_(__FILE__, __LINE__, #cond, __VA_ARGS__);        \
            return 1;                                                   \
        }                                                               \
    } while (0)

/* Run one case, print its line, count it. */
static inline void check_run_(const char *name, int (*fn)(void)) {
    check_state_.note[0] = '\0';
    if (fn() == 0) {
        check_state_.passed++;
        printf("ok   %s\n", name);
    } else {
        check_state_.failed++;
        printf("FAIL %s: %s\n", name, check_state_.note);
    }
    fflush(stdout);
}

/* Final line; returns the exit status for main. */
static inline int check_summary_(void) {
    printf("%d passed, %d failed\n", check_state_.passed, check_state_.failed);
    return check_state_.failed > 0;
}

#define RUN(fn) check_run_(#fn, fn)
#define RUN_NAMED(name, fn) check_run_(name, fn)     /* table-driven cases */
#define CHECK_SUMMARY() check_summary_()

#endif /* SKY_TESTS_CHECK_H */
