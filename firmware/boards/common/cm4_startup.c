/*
 * Reset handler and fault handlers shared by the Cortex-M4 ports; the vector table is in
 * cm4_vectors.c.
 */
#include <stdint.h>

#include "cm4.h"

/* Linker-script symbols: .data is loaded from flash at _sidata into [_sdata, _edata). */
extern uint32_t _sidata;
extern uint32_t _sdata;
extern uint32_t _edata;
extern uint32_t _sbss;
extern uint32_t _ebss;
extern const cm4_vector_t tme_board_vectors[];

int main(void);

void cm4_reset_handler(void)
{
    /* Enable the FPU before any floating-point instruction: with -mfloat-abi=hard the compiler may
     * use FP registers anywhere (even in memcpy-like code), and an FP instruction with CP10/CP11
     * disabled raises a UsageFault (NOCP). The barriers make the new access rights take effect
     * before the next instruction. */
    SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    /* A boot loader (or the debugger) may have left VTOR elsewhere. */
    SCB_VTOR = (uint32_t)(uintptr_t)tme_board_vectors;

    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata; dst++) {
        *dst = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0U;
    }

    (void)main();
    for (;;) {
        cm4_wfi();
    }
}

/* HardFault, MemManage, BusFault, UsageFault: stop here for a debugger; the host times out. */
void cm4_fault_handler(void)
{
    for (;;) {
    }
}

/* Any exception or interrupt the firmware did not expect to enable. */
void cm4_default_handler(void)
{
    for (;;) {
    }
}
