/*
 * test_man.c -- the man pages agree with the code: llmux.yaml(5) lists
 * every key of the config table (common/config_keys.c) in its section,
 * with the table's default, and no key the table does not have; each
 * program's page exists, and llmuxctl(1) describes every verb of its
 * table (ctl/verbs.c).
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "ctl/ctl.h"
#include "xmalloc.h"
#include "unit.h"

#define MAN_CONFIG	"docs/man/llmux.yaml.5"

/* The .Ss title of each section of the table. */
static const char *
man_section_title(enum config_section s)
{
	switch (s) {
	case CS_TOP:
		return ("Top level");
	case CS_MODEL:
		return ("Models");
	case CS_POLICY:
		return ("policy");
	case CS_CHECKPOINT:
		return ("checkpoint");
	case CS_OBJECT_STORE:
		return ("checkpoint.object_store");
	case CS_PROXY:
		return ("proxy");
	case CS_GPU:
		return ("gpu");
	default:
		return (NULL);
	}
}

/* A copy of the text of subsection title: from its .Ss to the next. */
static char *
man_subsection(const char *page, const char *title)
{
	char		*needle, *start, *end;
	const char	*p;

	xasprintf(&needle, "\n.Ss %s\n", title);
	p = strstr(page, needle);
	free(needle);
	if (p == NULL)
		return (NULL);
	start = xstrdup(p + 1);
	end = strstr(start + 1, "\n.Ss ");
	if (end == NULL)
		end = strstr(start + 1, "\n.Sh ");
	if (end != NULL)
		end[1] = '\0';
	return (start);
}

/* A copy of a key's item in a subsection, or NULL. */
static char *
man_item(const char *sub, const char *name)
{
	char		*needle, *item, *end;
	const char	*p;

	xasprintf(&needle, "\n.It Ic %s\n", name);
	p = strstr(sub, needle);
	free(needle);
	if (p == NULL)
		return (NULL);
	item = xstrdup(p + 1);
	end = strstr(item + 1, "\n.It ");
	if (end == NULL)
		end = strstr(item + 1, "\n.El");
	if (end != NULL)
		end[1] = '\0';
	return (item);
}

START_TEST(test_every_key_with_its_default)
{
	char	*page, *sub, *item, *want;

	page = unit_read_file(MAN_CONFIG, NULL);
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key	*k = &config_keys[i];
		const char		*title;

		title = man_section_title(k->section);
		ck_assert_msg(title != NULL, "section %d has no title",
		    (int)k->section);
		sub = man_subsection(page, title);
		ck_assert_msg(sub != NULL, "%s has no .Ss %s", MAN_CONFIG,
		    title);
		item = man_item(sub, k->name);
		ck_assert_msg(item != NULL, "%s: .Ss %s does not list %s",
		    MAN_CONFIG, title, k->name);
		if (k->def != NULL) {
			xasprintf(&want, "\nDefault:\n.Ql %s .\n", k->def);
			ck_assert_msg(strstr(item, want) != NULL,
			    "%s: %s.%s does not give its default %s",
			    MAN_CONFIG, title, k->name, k->def);
			free(want);
		}
		free(item);
		free(sub);
	}
	free(page);
}
END_TEST

/* Every ".It Ic NAME" under KEYS is a key of the table, in its section. */
START_TEST(test_no_unknown_key)
{
	char		*page, *keys, *end, *line, *save = NULL;
	const char	*p;
	int		 section = -1, listed = 0;

	page = unit_read_file(MAN_CONFIG, NULL);
	p = strstr(page, "\n.Sh KEYS\n");
	ck_assert_msg(p != NULL, "%s has no KEYS section", MAN_CONFIG);
	keys = xstrdup(p + 1);
	if ((end = strstr(keys + 1, "\n.Sh ")) != NULL)
		*end = '\0';
	for (line = strtok_r(keys, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, ".Ss ", 4) == 0) {
			section = -1;
			for (int s = 0; s < CS__COUNT; s++) {
				const char *t = man_section_title(s);

				if (t != NULL && strcmp(t, line + 4) == 0)
					section = s;
			}
			ck_assert_msg(section != -1, "%s: unknown section %s",
			    MAN_CONFIG, line + 4);
		} else if (strncmp(line, ".It Ic ", 7) == 0) {
			ck_assert_msg(section != -1, "%s: %s outside a section",
			    MAN_CONFIG, line);
			ck_assert_msg(config_keys_find(section, line + 7) !=
			    NULL, "%s: %s is not a key of %s", MAN_CONFIG,
			    line + 7, man_section_title(section));
			listed++;
		}
	}
	ck_assert_int_eq(listed, (int)config_nkeys);
	free(keys);
	free(page);
}
END_TEST

/* The checks themselves find what is missing. */
START_TEST(test_helpers_find_gaps)
{
	const char	*page = "x\n.Ss Top level\n.Bl -tag\n.It Ic port\n"
	    "Default:\n.Ql 3000 .\n.It Ic user\nthe user\n.El\n"
	    ".Ss gpu\n.Bl\n.It Ic nvml_library\n.El\n.Sh FILES\n";
	char		*sub, *item;

	sub = man_subsection(page, "Top level");
	ck_assert_ptr_nonnull(sub);
	ck_assert_ptr_null(strstr(sub, "gpu"));
	item = man_item(sub, "port");
	ck_assert_ptr_nonnull(item);
	ck_assert_ptr_nonnull(strstr(item, "\nDefault:\n.Ql 3000 .\n"));
	ck_assert_ptr_null(strstr(item, "user"));
	free(item);
	ck_assert_ptr_null(man_item(sub, "nvml_library"));
	ck_assert_ptr_null(man_item(sub, "por"));
	free(sub);
	ck_assert_ptr_null(man_subsection(page, "policy"));
	sub = man_subsection(page, "gpu");
	ck_assert_ptr_nonnull(sub);
	ck_assert_ptr_null(strstr(sub, "FILES"));
	free(sub);
}
END_TEST

/* Each program's page exists; llmuxctl(1) describes every verb. */
START_TEST(test_pages)
{
	static const char *pages[] = {
		"docs/man/llmux-supervisord.8", "docs/man/llmux-proxyd.8",
		"docs/man/llmuxctl.1", "docs/man/llmux-fakevllm.1",
		"docs/man/llmux-sim.1", MAN_CONFIG,
	};
	char	*page, *needle;

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		page = unit_read_file(pages[i], NULL);
		ck_assert_msg(strncmp(page, ".\\\"", 3) == 0 &&
		    strstr(page, "\n.Sh NAME\n") != NULL &&
		    strstr(page, "\n.Sh SEE ALSO\n") != NULL,
		    "%s is not an mdoc page with NAME and SEE ALSO", pages[i]);
		free(page);
	}
	page = unit_read_file("docs/man/llmuxctl.1", NULL);
	for (const struct ctl_verb *v = ctl_verbs; v->name != NULL; v++) {
		xasprintf(&needle, "\n.It Cm %s", v->name);
		ck_assert_msg(strstr(page, needle) != NULL,
		    "llmuxctl.1 does not describe %s", v->name);
		free(needle);
	}
	free(page);
}
END_TEST

static Suite *
man_suite(void)
{
	Suite	*s = suite_create("man");
	TCase	*tc = tcase_create("man");

	tcase_add_test(tc, test_every_key_with_its_default);
	tcase_add_test(tc, test_no_unknown_key);
	tcase_add_test(tc, test_helpers_find_gaps);
	tcase_add_test(tc, test_pages);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(man_suite()));
}
