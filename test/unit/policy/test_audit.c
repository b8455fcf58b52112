/*
 * Unit tests of auth/policy/audit: lines reach a file whole; on a pipe
 * nobody reads, writes never block, the queue holds what fits its bound
 * and drops (and counts) the rest, and the loop delivers the queue once
 * the reader drains; stdout's own flags stay blocking.
 */
#include "auth/policy/audit.h"

#include "common/xalloc.h"
#include "proxy/metrics.h"
#include "test/unit/unit.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_object *
line_of(int i, size_t pad)
{
	json_object *o = json_object_new_object();
	char *p = xmalloc(pad + 1);

	memset(p, 'x', pad);
	p[pad] = '\0';
	json_object_object_add(o, "i", json_object_new_int(i));
	json_object_object_add(o, "pad", json_object_new_string(p));
	free(p);
	return o;
}

static void
test_file(void)
{
	char dir[] = "/tmp/mcpauditXXXXXX", err[160], buf[256];
	char *path;
	struct audit *a;
	json_object *o;
	FILE *f;
	int n = 0;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	path = xasprintf("%s/audit.log", dir);
	a = audit_new(NULL, path, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (int i = 0; i < 3; i++) {
		o = line_of(i, 3);
		audit_write(a, o);
		json_object_put(o);
	}
	audit_free(a);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(buf, sizeof buf, f) != NULL) {
		char want[64];

		snprintf(want, sizeof want, "{\"i\":%d,\"pad\":\"xxx\"}\n", n++);
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	fclose(f);
	CU_ASSERT_EQUAL(n, 3);
	unlink(path);
	rmdir(dir);
	free(path);

	CU_ASSERT_PTR_NULL(audit_new(NULL, "/nonexistent/dir/audit.log", err, sizeof err));
	CU_ASSERT_STRING_EQUAL(err,
	    "cannot open the audit log /nonexistent/dir/audit.log: No such file or directory");
}

/* stdout is a pipe nobody reads: nothing blocks, the overflow is dropped. */
static void
test_pipe_never_blocks(void)
{
	struct event_base *base = event_base_new();
	int fds[2], saved, fl;
	struct audit *a;
	char err[160], buf[65536];
	size_t got = 0, lines = 0;
	ssize_t n;

	CU_ASSERT_FATAL(pipe(fds) == 0);
	fcntl(fds[1], F_SETPIPE_SZ, 4096);
	saved = dup(STDOUT_FILENO);
	fflush(stdout);
	dup2(fds[1], STDOUT_FILENO);
	a = audit_new(base, "-", err, sizeof err);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	/* stdout's file description is left blocking (stderr may share it) */
	fl = fcntl(fds[1], F_GETFL);
	CU_ASSERT_EQUAL(fl & O_NONBLOCK, 0);

	/* 2 MiB of lines into a 4 KiB pipe: returns, keeps at most 1 MiB queued */
	for (int i = 0; i < 2048; i++) {
		json_object *o = line_of(i, 1000);

		audit_write(a, o);
		json_object_put(o);
	}
	CU_ASSERT_TRUE(audit_dropped(a) > 900);
	CU_ASSERT_TRUE(audit_dropped(a) < 1100);

	/* the reader drains; the loop writes the rest */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	for (int round = 0; round < 10000; round++) {
		while ((n = read(fds[0], buf, sizeof buf)) > 0) {
			got += (size_t)n;
			for (ssize_t k = 0; k < n; k++)
				lines += buf[k] == '\n';
		}
		if (lines == 2048 - audit_dropped(a))
			break;
		event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	}
	CU_ASSERT_EQUAL(lines, 2048 - audit_dropped(a));
	CU_ASSERT_TRUE(got > 1000 * lines);
	audit_free(a);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
	metrics_reset();
}

int
main(void)
{
	static const struct unit_test tests[] = {
		{ "file", test_file },
		{ "pipe_never_blocks", test_pipe_never_blocks },
		{ NULL, NULL },
	};

	return unit_run("audit", tests);
}
