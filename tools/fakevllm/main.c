/*
 * main.c -- llmux-fakevllm (not yet implemented: prints its usage).
 */
#include <stdio.h>
#include <string.h>

#include "version.h"

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("llmux-fakevllm %s\n", LLMUX_VERSION);
		return (0);
	}
	fprintf(stderr, "llmux-fakevllm: not implemented yet\n");
	return (argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 1);
}
