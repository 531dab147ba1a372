/*
 * QEMU 7.2 `-M netduinoplus2`: an STM32F405 as QEMU models it (not a real Netduino Plus 2: GPIO,
 * RCC and baud-rate set-up are skipped because QEMU does not model them).
 *
 * The counter is TIM2, which QEMU derives from its virtual clock. With `-icount shift=0` that
 * clock advances exactly 1 ns per guest instruction, and the timer is clocked at 1 GHz, so CNT
 * counts executed instructions: deterministic, but instructions, not cycles.
 */
#ifndef TME_BOARD_H
#define TME_BOARD_H

#define TME_PORT_BOARD_NAME "qemu_netduinoplus2"
/* Nominal SYSCLK of QEMU's netduinoplus2 machine; unrelated to the instruction count. */
#define TME_PORT_CLOCK_HZ 168000000U
#define TME_PORT_COUNTER_UNIT TME_COUNTER_UNIT_INSTRUCTIONS
/* TIM2_CNT: TIMx_CNT of TIM2 (RM0090, general-purpose timers TIM2..TIM5) */
#define TME_PORT_COUNTER_READ() (*(volatile uint32_t *)0x40000024U)
/* TIM2 ticks at 1 GHz of QEMU's virtual clock: the MLPerf dialect's m-lap-us are emulated time. */
#define TME_PORT_COUNTER_HZ 1000000000U
#define TME_PORT_HAVE_IDLE 1

/* USART1's IRQ number (RM0090 / RM0351 vector table): its slot ends the shared vector table. */
#define TME_BOARD_UART_IRQN 37U

#ifndef TME_PORT_HAVE_WATCHDOG /* a test build may turn it off: -DTME_PORT_HAVE_WATCHDOG=0 */
#define TME_PORT_HAVE_WATCHDOG 1
#endif

#endif /* TME_BOARD_H */
