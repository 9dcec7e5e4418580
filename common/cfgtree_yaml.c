/*
 * cfgtree_yaml.c -- builds a cfgtree from YAML with libyaml's event
 * parser. Anchors and aliases are refused outright, so an alias bomb
 * ("billion laughs") is one clear error rather than an expansion; tags
 * other than !!str, !!map and !!seq are refused too.
 */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "cfgtree.h"
#include "cfgtree_int.h"

#define CFGTREE_YAML_TAG	"tag:yaml.org,2002:"

/* Line and column of a byte offset, for reader errors. */
static void
cfgtree_yaml_offset(const char *buf, size_t len, size_t off, unsigned *line,
    unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80)
			(*col)++;
	}
}

/* Refuse anchors and unsupported tags on a node; 0 when acceptable. */
static int
cfgtree_yaml_props(struct cfgtree_builder *b, const yaml_event_t *ev,
    const unsigned char *anchor, const unsigned char *tag, const char *ok)
{
	unsigned	line = ev->start_mark.line + 1;
	unsigned	col = ev->start_mark.column + 1;
	const char	*t = (const char *)tag;

	if (anchor != NULL)
		return (cfgtree_builder_fail(b, line, col,
		    "YAML anchors (&name) are not supported: write the value "
		    "out in full"));
	if (t == NULL || strcmp(t, "!") == 0)
		return (0);
	if (strncmp(t, CFGTREE_YAML_TAG, strlen(CFGTREE_YAML_TAG)) == 0 &&
	    strcmp(t + strlen(CFGTREE_YAML_TAG), ok) == 0)
		return (0);
	return (cfgtree_builder_fail(b, line, col,
	    "YAML tags are not supported here (only !!str, !!map and !!seq)"));
}

/* Turn one event into tree nodes; -1 on error. */
static int
cfgtree_yaml_event(struct cfgtree_builder *b, const yaml_event_t *ev,
    int *docs)
{
	struct cfgnode	*n;
	unsigned	 line = ev->start_mark.line + 1;
	unsigned	 col = ev->start_mark.column + 1;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return (cfgtree_builder_fail(b, line, col,
			    "more than one YAML document in the file"));
		return (0);
	case YAML_ALIAS_EVENT:
		return (cfgtree_builder_fail(b, line, col,
		    "YAML aliases (*name) are not supported: write the value "
		    "out in full"));
	case YAML_SCALAR_EVENT:
		if (cfgtree_yaml_props(b, ev, ev->data.scalar.anchor,
		    ev->data.scalar.tag, "str") != 0)
			return (-1);
		if ((n = cfgtree_builder_node(b, CFGNODE_SCALAR, line,
		    col)) == NULL)
			return (-1);
		if (cfgtree_builder_text(b, n,
		    (const char *)ev->data.scalar.value,
		    ev->data.scalar.length) != 0) {
			cfgtree_free(n);
			return (-1);
		}
		/* Quoted, or tagged !!str: a string, whatever it reads. */
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
		    ev->data.scalar.tag != NULL;
		if (!n->quoted && ev->data.scalar.tag == NULL)
			cfgtree_resolve_plain(n);
		return (cfgtree_builder_add(b, n));
	case YAML_SEQUENCE_START_EVENT:
		if (cfgtree_yaml_props(b, ev, ev->data.sequence_start.anchor,
		    ev->data.sequence_start.tag, "seq") != 0)
			return (-1);
		if ((n = cfgtree_builder_node(b, CFGNODE_SEQ, line,
		    col)) == NULL)
			return (-1);
		return (cfgtree_builder_add(b, n));
	case YAML_MAPPING_START_EVENT:
		if (cfgtree_yaml_props(b, ev, ev->data.mapping_start.anchor,
		    ev->data.mapping_start.tag, "map") != 0)
			return (-1);
		if ((n = cfgtree_builder_node(b, CFGNODE_MAP, line,
		    col)) == NULL)
			return (-1);
		return (cfgtree_builder_add(b, n));
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return (cfgtree_builder_close(b));
	default:
		return (0);
	}
}

struct cfgnode *
cfgtree_parse_yaml(const char *buf, size_t len, struct cfgtree_error *err)
{
	struct cfgtree_builder	 b;
	yaml_parser_t		 p;
	yaml_event_t		 ev;
	unsigned		 line, col;
	int			 docs = 0, done = 0;

	cfgtree_builder_init(&b, err);
	if (!yaml_parser_initialize(&p)) {
		cfgtree_builder_fail(&b, 0, 0, "cannot start the YAML parser");
		return (cfgtree_builder_finish(&b));
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done && !b.failed) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_READER_ERROR)
				cfgtree_yaml_offset(buf, len, p.problem_offset,
				    &line, &col);
			else {
				line = p.problem_mark.line + 1;
				col = p.problem_mark.column + 1;
			}
			cfgtree_builder_fail(&b, line, col,
			    "YAML syntax error: %s%s%s",
			    p.problem != NULL ? p.problem : "out of memory",
			    p.context != NULL ? " " : "",
			    p.context != NULL ? p.context : "");
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		cfgtree_yaml_event(&b, &ev, &docs);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return (cfgtree_builder_finish(&b));
}
