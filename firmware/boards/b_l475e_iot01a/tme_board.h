/*
 * ST B-L475E-IOT01A Discovery kit: STM32L475VG (Cortex-M4F) at 80 MHz; USART1 on PB6/PB7 reaches
 * the host through the ST-LINK virtual COM port; DWT CYCCNT counts core clock cycles.
 */
#ifndef TME_BOARD_H
#define TME_BOARD_H

#define TME_PORT_BOARD_NAME "b_l475e_iot01a"
#define TME_PORT_CLOCK_HZ 80000000U
#define TME_PORT_COUNTER_UNIT TME_COUNTER_UNIT_CYCLES
/* DWT_CYCCNT (ARMv7-M Architecture Reference Manual, DWT), enabled in tme_port_init() */
#define TME_PORT_COUNTER_READ() (*(volatile uint32_t *)0xE0001004U)
#define TME_PORT_HAVE_IDLE 1

/* USART1's IRQ number (RM0090 / RM0351 vector table): its slot ends the shared vector table. */
#define TME_BOARD_UART_IRQN 37U

#ifndef TME_PORT_HAVE_WATCHDOG /* a test build may turn it off: -DTME_PORT_HAVE_WATCHDOG=0 */
#define TME_PORT_HAVE_WATCHDOG 1
#endif

#endif /* TME_BOARD_H */
