/*
 * Cortex-M4 core registers shared by the board ports (ARMv7-M Architecture Reference Manual,
 * ARM DDI 0403; Cortex-M4 Devices Generic User Guide, ARM DUI 0553). Names follow CMSIS.
 */
#ifndef CM4_H
#define CM4_H

#include <stdint.h>

#define CM4_REG(addr) (*(volatile uint32_t *)(addr))

/* System Control Block */
#define SCB_VTOR CM4_REG(0xE000ED08U)
#define SCB_CPACR CM4_REG(0xE000ED88U)
#define SCB_AIRCR CM4_REG(0xE000ED0CU)
#define SCB_AIRCR_VECTKEY (0x05FAU << 16) /* writes without this key are ignored */
#define SCB_AIRCR_SYSRESETREQ (1U << 2)
#define SCB_AIRCR_PRIGROUP_Msk (7U << 8)
#define SCB_SHPR3 CM4_REG(0xE000ED20U) /* bits 31..24: SysTick priority, 23..16: PendSV */
#define SCB_CPACR_CP10_CP11_FULL (0xFU << 20) /* CP10 + CP11 (the FPU): full access */

/* Nested Vectored Interrupt Controller: ISER0 covers IRQ 0..31, ISER1 32..63, ... */
#define NVIC_ISER(n) CM4_REG(0xE000E100U + (4U * (n)))
#define NVIC_ICER(n) CM4_REG(0xE000E180U + (4U * (n)))
/* One priority byte per IRQ; the STM32s implement the upper 4 bits (0x00 highest ... 0xF0). */
#define NVIC_IPR_BYTE(n) (*(volatile uint8_t *)(0xE000E400U + (n)))

/* SysTick (ARMv7-M B3.3) */
#define SYST_CSR CM4_REG(0xE000E010U)
#define SYST_RVR CM4_REG(0xE000E014U)
#define SYST_CVR CM4_REG(0xE000E018U)
#define SYST_CSR_ENABLE (1U << 0)
#define SYST_CSR_TICKINT (1U << 1)
#define SYST_CSR_CLKSOURCE_CPU (1U << 2)
#define SYST_RVR_MAX 0x00FFFFFFU

/* Debug Exception and Monitor Control Register, Data Watchpoint and Trace unit */
#define CoreDebug_DEMCR CM4_REG(0xE000EDFCU)
#define CoreDebug_DEMCR_TRCENA (1U << 24)
#define DWT_CTRL CM4_REG(0xE0001000U)
#define DWT_CTRL_CYCCNTENA (1U << 0)
#define DWT_CYCCNT CM4_REG(0xE0001004U)

/* Exception numbers: IRQ n sits at vector-table index 16 + n. */
#define CM4_VECTOR_IRQ(n) (16U + (n))

typedef void (*cm4_vector_t)(void);

static inline void cm4_nvic_enable_irq(uint32_t irq)
{
    NVIC_ISER(irq >> 5) = 1U << (irq & 31U);
}

static inline void cm4_nvic_disable_irq(uint32_t irq)
{
    NVIC_ICER(irq >> 5) = 1U << (irq & 31U);
    /* The mask must be in effect before the caller goes on (ARMv7-M: "DSB; ISB after ICER"). */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

static inline void cm4_nvic_set_priority(uint32_t irq, uint8_t priority)
{
    NVIC_IPR_BYTE(irq) = priority;
}

/* Requests a system reset (all of the chip on the STM32s, the whole machine on QEMU); no return. */
static inline void cm4_system_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP_Msk) | SCB_AIRCR_SYSRESETREQ;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}

static inline void cm4_disable_irq(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
}

static inline void cm4_enable_irq(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}

/*
 * Sleep until an interrupt. Call with interrupts masked (cpsid i) after checking that there is
 * nothing to do: an interrupt that becomes pending while PRIMASK is set still wakes WFI, so no
 * wake-up is lost between the check and the sleep. The handler runs once cpsie i unmasks it.
 */
static inline void cm4_wfi(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

/* Handlers provided by cm4_startup.c for every board's vector table. */
void cm4_reset_handler(void);
void cm4_fault_handler(void);
void cm4_default_handler(void);
/* Provided by the board (boards/<board>/board.c) for the shared table in cm4_vectors.c. */
void tme_board_uart_irq(void);
void tme_board_systick_irq(void);

/* Linker-script symbols (see boards/<board>/linker.ld). */
extern uint32_t _estack;

#endif /* CM4_H */
