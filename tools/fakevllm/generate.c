/*
 * generate.c -- deterministic "model output" and a toy tokenizer.
 *
 * Token i of a completion is a pure function of (seed, i), where the seed
 * is a hash of the prompt (and the model name, and the request's seed when
 * sampling), so the same prompt gives the same text at temperature 0 and a
 * shorter max_tokens gives a prefix of a longer one, as greedy decoding
 * does. Tokens are " word", "," or "." (the first word has no space and is
 * capitalised, as is a word after "."), and fv_generate_count counts them
 * back exactly, so usage figures always match the text.
 */
#include <ctype.h>
#include <string.h>

#include "fakevllm.h"

static const char *generate_words[] = {
	"the", "model", "answer", "is", "a", "of", "to", "and", "in", "that",
	"it", "for", "on", "with", "as", "this", "be", "at", "by", "from",
	"we", "can", "will", "more", "one", "all", "which", "data", "time",
	"when", "there", "use", "each", "about", "how", "up", "out", "then",
	"them", "these", "so", "some", "would", "make", "like", "into", "has",
	"two", "way", "look", "first", "water", "been", "call", "who", "now",
	"find", "long", "down", "day", "did", "get", "come", "made", "may",
	"part", "over", "new", "sound", "take", "only", "little", "work",
	"know", "place", "year", "live", "back", "give", "most", "very",
	"after", "thing", "our", "just", "name", "good", "sentence", "man",
	"think", "say", "great", "where", "help", "through", "much", "before",
	"line", "right", "too", "mean", "old", "any", "same", "tell", "boy",
	"follow", "came", "want", "show", "also", "around", "form", "three",
	"small", "set", "put", "end", "does", "another", "well", "large",
	"must", "big", "even", "such", "because", "turn", "here", "why", "ask",
	"went", "men", "read", "need", "land", "other", "home", "us",
	"move", "try", "kind", "hand", "picture", "again", "change", "off",
	"play", "spell", "air", "away", "animal", "house", "point", "page",
	"letter", "mother", "near", "build", "self", "earth", "father",
	"head", "stand", "own", "should", "country", "found", "study",
	"still", "learn", "plant", "cover", "food", "sun", "four", "between",
	"state", "keep", "eye", "never", "last", "let", "thought", "city",
	"tree", "cross", "farm", "hard", "start", "might", "story", "saw",
	"far", "sea", "draw", "left", "late", "run", "while", "press",
	"close", "night", "real", "life", "few", "north", "open", "seem",
	"together", "next", "white", "children", "begin", "got", "walk",
	"example", "ease", "paper", "group", "always", "music", "those",
	"both", "mark", "often", "until", "mile", "river", "car", "feet",
	"care", "second", "book", "carry", "took", "science", "eat", "room",
	"friend", "began", "idea", "fish", "mountain", "stop", "once", "base",
	"hear", "horse", "cut", "sure", "watch", "color", "face", "wood",
	"main",
};
#define GENERATE_NWORDS	(sizeof(generate_words) / sizeof(generate_words[0]))

/* FNV-1a over a byte string, continuing from h. */
uint64_t
fv_generate_hash(uint64_t h, const void *p, size_t len)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return (h);
}

/* splitmix64's finaliser: a good 64-bit mixing function. */
uint64_t
fv_generate_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (x ^ (x >> 31));
}

static uint64_t
generate_random(uint64_t seed, uint32_t i)
{
	return (fv_generate_mix(seed ^ fv_generate_mix((uint64_t)i + 1)));
}

/* Would token i be punctuation, ignoring its neighbours? */
static int
generate_raw_punct(uint64_t seed, uint32_t i)
{
	uint64_t	r = generate_random(seed, i) >> 40;

	if (i == 0)
		return (0);
	if (r % 9 == 0)
		return (',');
	if (r % 11 == 1)
		return ('.');
	return (0);
}

/* Punctuation never follows punctuation. */
static int
generate_punct(uint64_t seed, uint32_t i)
{
	int	p;

	if ((p = generate_raw_punct(seed, i)) == 0)
		return (0);
	if (generate_raw_punct(seed, i - 1) != 0)
		return (0);
	return (p);
}

/* Write token i's text into buf; returns its length. */
size_t
fv_generate_token(uint64_t seed, uint32_t i, char *buf, size_t size)
{
	const char	*w;
	size_t		 len, off = 0;
	int		 p, cap;

	if (size < FV_TOKEN_MAX) {
		if (size > 0)
			buf[0] = '\0';
		return (0);
	}
	if ((p = generate_punct(seed, i)) != 0) {
		buf[0] = (char)p;
		buf[1] = '\0';
		return (1);
	}
	cap = (i == 0 || generate_punct(seed, i - 1) == '.');
	w = generate_words[generate_random(seed, i) % GENERATE_NWORDS];
	len = strlen(w);
	if (i != 0)
		buf[off++] = ' ';
	memcpy(buf + off, w, len);
	if (cap)
		buf[off] = (char)toupper((unsigned char)buf[off]);
	off += len;
	buf[off] = '\0';
	return (off);
}

/*
 * Count tokens the way the generator makes them: a run of letters, digits
 * and apostrophes is one token per 8 characters, any other visible ASCII
 * character is one, a UTF-8 character is one, white space is free.
 */
uint32_t
fv_generate_count(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 n = 0;
	size_t			 i = 0, run;

	while (i < len) {
		if (isalnum(p[i]) || p[i] == '\'') {
			run = 0;
			while (i < len && (isalnum(p[i]) || p[i] == '\'')) {
				run++;
				i++;
			}
			n += 1 + (uint32_t)((run - 1) / 8);
			continue;
		}
		if (p[i] >= 0x80 && p[i] < 0xc0) {
			i++;	/* UTF-8 continuation byte */
			continue;
		}
		if (!isspace(p[i]))
			n++;
		i++;
	}
	return (n);
}

/* How long an answer runs before "EOS" when max_tokens is not given. */
uint32_t
fv_generate_natural(uint64_t seed)
{
	return (8 + (uint32_t)(fv_generate_mix(seed ^ 0x5eed) % 57));
}
