/*
 * hex.h -- reading hexadecimal digits, for every decoder of llmux that
 * meets them: percent escapes (kvtext.c, the proxy's web page,
 * llmux-fakevllm's query strings), JSON's \u escapes and chunk sizes (the
 * proxy), XML character references (the object store) and GPU UUIDs.
 */
#ifndef LLMUX_HEX_H
#define LLMUX_HEX_H

/* The value of the hex digit c (either case), or -1 if it is not one. */
int	hex_digit(int c);

#endif
