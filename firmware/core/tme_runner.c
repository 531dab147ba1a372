#include "tme_runner.h"

#include "model.h"
#include "tme_port.h"

/*
 * GCC may neither inline a `noipa` function nor derive facts from its body (such as "pure",
 * "no memory access"), so this call cannot be moved across the counter reads, whatever
 * tme_model_invoke() looks like and however much of the model the compiler (or LTO) can see.
 * Clang has no `noipa`; `noinline` plus the barriers below is the closest it offers.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define TME_RUNNER_NOIPA __attribute__((noipa))
#else
#define TME_RUNNER_NOIPA __attribute__((noinline))
#endif

static TME_RUNNER_NOIPA void tme_runner_call_model(void)
{
    tme_model_invoke();
}

uint32_t tme_runner_invoke_timed(void)
{
    uint32_t start = TME_PORT_COUNTER_READ();
    /* Compiler barriers: no memory access (input writes, output reads) crosses a counter read. */
    __asm__ volatile("" ::: "memory");
    tme_runner_call_model();
    __asm__ volatile("" ::: "memory");
    uint32_t end = TME_PORT_COUNTER_READ();
    return end - start;
}
