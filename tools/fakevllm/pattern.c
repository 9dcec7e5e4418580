/*
 * pattern.c -- the known bytes written into device memory by the
 * stand-in's --fake-gpu cuda mode and by tests/gpu/gpu_copy.c, so that a
 * copy, a sleep or a CUDA checkpoint that loses, moves or damages any
 * part of it is found.
 *
 * The 64-bit word at byte offset OFF of block ID is a tag naming the block
 * and the 512-byte sector (at every 512-byte boundary) or a word of a
 * 4 KiB block derived from the seed (everywhere else). A staging buffer
 * filled once with the repeated 4 KiB block (fv_pattern_base) needs only
 * its tags rewritten (fv_pattern_stamp, one word in 64) before each copy,
 * so writing the pattern costs no more CPU than the copy itself.
 */
#include <string.h>

#include "fakevllm.h"

#define PATTERN_BLOCK	4096
#define PATTERN_SECTOR	512
#define PATTERN_MAGIC	0x6c6c6d7578504154ULL	/* "llmuxPAT" */

static uint64_t	pattern_seed;
static int	pattern_ready;
static uint64_t	pattern_block[PATTERN_BLOCK / 8];

static const uint64_t *
pattern_block_of(uint64_t seed)
{
	if (!pattern_ready || seed != pattern_seed) {
		for (size_t i = 0; i < PATTERN_BLOCK / 8; i++)
			pattern_block[i] = fv_generate_mix(seed ^
			    (0x9e3779b97f4a7c15ULL * (i + 1)));
		pattern_seed = seed;
		pattern_ready = 1;
	}
	return (pattern_block);
}

uint64_t
fv_pattern_tag(uint64_t seed, uint32_t id, uint64_t off)
{
	return (seed ^ PATTERN_MAGIC ^ ((uint64_t)id << 44) ^
	    (off / PATTERN_SECTOR));
}

/* LEN bytes (a multiple of 8) of the repeated 4 KiB block, from phase 0. */
void
fv_pattern_base(void *buf, size_t len, uint64_t seed)
{
	const uint64_t	*b = pattern_block_of(seed);
	unsigned char	*p = buf;
	size_t		 n;

	for (size_t pos = 0; pos < len; pos += n) {
		n = len - pos < PATTERN_BLOCK ? len - pos : PATTERN_BLOCK;
		memcpy(p + pos, b, n);
	}
}

/*
 * The tags of LEN bytes standing at offset OFF of block ID, in a buffer
 * that fv_pattern_base filled (OFF a multiple of 4 KiB).
 */
void
fv_pattern_stamp(void *buf, size_t len, uint64_t seed, uint32_t id,
    uint64_t off)
{
	unsigned char	*p = buf;
	uint64_t	 tag;

	for (size_t pos = 0; pos + 8 <= len; pos += PATTERN_SECTOR) {
		tag = fv_pattern_tag(seed, id, off + pos);
		memcpy(p + pos, &tag, sizeof(tag));
	}
}

/*
 * The first byte of BUF (LEN bytes read from offset OFF of block ID, both
 * multiples of 8) that is not the pattern, or -1 when all of it is.
 */
int64_t
fv_pattern_find(const void *buf, size_t len, uint64_t seed, uint32_t id,
    uint64_t off)
{
	const unsigned char	*p = buf;
	const unsigned char	*b = (const unsigned char *)pattern_block_of(seed);
	uint64_t		 word, want;
	size_t			 pos, n, phase;

	for (pos = 0; pos < len; pos += n) {
		phase = (size_t)((off + pos) % PATTERN_BLOCK);
		n = PATTERN_SECTOR - (size_t)((off + pos) % PATTERN_SECTOR);
		if (n > len - pos)
			n = len - pos;
		if ((off + pos) % PATTERN_SECTOR == 0) {
			memcpy(&word, p + pos, sizeof(word));
			if (word != fv_pattern_tag(seed, id, off + pos))
				return ((int64_t)pos);
			if (n <= 8 || memcmp(p + pos + 8, b + phase + 8,
			    n - 8) == 0)
				continue;
		} else if (memcmp(p + pos, b + phase, n) == 0)
			continue;
		/* Say which word differs. */
		for (size_t k = 0; k < n; k += 8) {
			size_t	at = pos + k;

			memcpy(&word, p + at, sizeof(word));
			if ((off + at) % PATTERN_SECTOR == 0)
				want = fv_pattern_tag(seed, id, off + at);
			else
				memcpy(&want, b + (off + at) % PATTERN_BLOCK,
				    sizeof(want));
			if (word != want)
				return ((int64_t)at);
		}
	}
	return (-1);
}

/* The word the pattern holds at offset OFF of block ID. */
uint64_t
fv_pattern_word(uint64_t seed, uint32_t id, uint64_t off)
{
	const uint64_t	*b = pattern_block_of(seed);

	if (off % PATTERN_SECTOR == 0)
		return (fv_pattern_tag(seed, id, off));
	return (b[(off % PATTERN_BLOCK) / 8]);
}
