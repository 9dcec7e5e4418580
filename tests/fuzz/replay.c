/*
 * replay.c -- a stand-in for libFuzzer's driver: runs a fuzz target's
 * LLVMFuzzerTestOneInput over each file named on the command line, so that
 * `make check` replays every saved corpus and crash input with any compiler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE	*f;
		uint8_t	*buf;
		long	 len;

		if ((f = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return (1);
		}
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc(len > 0 ? (size_t)len : 1);
		if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			perror(argv[i]);
			return (1);
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)len);
		free(buf);
	}
	printf("replayed %d inputs\n", argc - 1);
	return (0);
}
