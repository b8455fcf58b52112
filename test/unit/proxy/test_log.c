/*
 * The logger: lines cut for size stay valid JSON; on the loop a stderr that
 * nobody reads never blocks a caller, lines that do not fit the queue are
 * dropped and counted, and once the reader is back the queued lines come
 * out whole and in order, followed by a line saying how many were dropped;
 * libevent's own messages come out as our JSON lines; log_detach() flushes.
 */
#include <stdbool.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log.h"
#include "test/unit/unit.h"

/* Everything the pipe holds, appended to *acc (len *n). */
static void
drain(int rfd, char **acc, size_t *n)
{
	char buf[65536];
	ssize_t r;

	while ((r = read(rfd, buf, sizeof buf)) > 0) {
		*acc = realloc(*acc, *n + (size_t)r + 1);
		memcpy(*acc + *n, buf, (size_t)r);
		*n += (size_t)r;
		(*acc)[*n] = '\0';
	}
}

static void
make_pipe(int p[2], int size)
{
	CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (size > 0)
		fcntl(p[1], F_SETPIPE_SZ, size);
}

/* Each line of text is a JSON object; calls fn on each. Returns the count. */
static int
each_line(char *text, void (*fn)(json_object *, void *), void *arg)
{
	int n = 0;

	for (char *line = text, *nl; line != NULL && *line != '\0'; line = nl) {
		json_object *o;

		nl = strchr(line, '\n');
		CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
		*nl++ = '\0';
		o = json_tokener_parse(line);
		CU_ASSERT_PTR_NOT_NULL(o);
		if (o == NULL) {
			fprintf(stderr, "not JSON: %.200s\n", line);
			continue;
		}
		if (fn != NULL)
			fn(o, arg);
		json_object_put(o);
		n++;
	}
	return n;
}

static void
check_truncated(json_object *o, void *arg)
{
	json_object *t;

	CU_ASSERT(json_object_object_get_ex(o, "truncated", &t) && json_object_get_boolean(t));
	CU_ASSERT(json_object_object_get_ex(o, "msg", &t));
}

static void
test_truncated_lines_are_json(void)
{
	static const char *const units[] = { "a", "\"", "\\", "\x01", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\xff" };
	char *value = malloc(LOG_LINE_MAX * 2), *out = NULL;
	size_t n = 0;
	int p[2], lines = 0;

	make_pipe(p, 1 << 20);
	log_set_fd(p[1]);
	/* Every kind of character, cut at every offset of the last bytes. */
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		for (size_t len = LOG_LINE_MAX - 120; len < LOG_LINE_MAX - 40; len++) {
			size_t k = 0;

			while (k + strlen(units[u]) < len) {
				memcpy(value + k, units[u], strlen(units[u]));
				k += strlen(units[u]);
			}
			value[k] = '\0';
			log_info("big", LOG_S("value", value), LOG_I("after", 42));
			lines++;
		}
		drain(p[0], &out, &n);
	}
	/* A cut in the key, in a number, in the message itself. */
	memset(value, 'k', LOG_LINE_MAX + 10);
	value[LOG_LINE_MAX + 10] = '\0';
	log_info(value, LOG_S("x", "y"));
	log_info("m", LOG_S(value, "y"));
	memset(value, 'v', LOG_LINE_MAX - 90);
	value[LOG_LINE_MAX - 90] = '\0';
	for (int i = 0; i < 60; i++)
		log_info("m", LOG_S("v", value + i), LOG_I("n", 1234567890123LL), LOG_D("d", 1.5),
		    LOG_B("b", true));
	lines += 62;
	drain(p[0], &out, &n);
	CU_ASSERT_EQUAL(each_line(out, NULL, NULL), lines);
	log_set_fd(-1);
	close(p[0]);
	close(p[1]);
	free(out);
	out = NULL;
	n = 0;
	/* Every truncated one says so. */
	make_pipe(p, 1 << 20);
	log_set_fd(p[1]);
	memset(value, '\x02', LOG_LINE_MAX);
	value[LOG_LINE_MAX] = '\0';
	log_info("m", LOG_S("v", value));
	drain(p[0], &out, &n);
	CU_ASSERT_EQUAL(each_line(out, check_truncated, NULL), 1);
	log_set_fd(-1);
	close(p[0]);
	close(p[1]);
	free(out);
	free(value);
}

struct seq {
	long next;
	long seen;
	long dropped_reported;
	bool libevent;
};

static void
check_seq(json_object *o, void *arg)
{
	struct seq *s = arg;
	json_object *m, *f;

	CU_ASSERT_FATAL(json_object_object_get_ex(o, "msg", &m));
	if (strcmp(json_object_get_string(m), "line") == 0) {
		long i;

		CU_ASSERT_FATAL(json_object_object_get_ex(o, "i", &f));
		i = (long)json_object_get_int64(f);
		CU_ASSERT(i >= s->next); /* in order, never twice */
		s->next = i + 1;
		s->seen++;
	} else if (strcmp(json_object_get_string(m), "log lines dropped: stderr was not read") ==
	    0) {
		CU_ASSERT_FATAL(json_object_object_get_ex(o, "dropped", &f));
		s->dropped_reported += (long)json_object_get_int64(f);
	} else if (strcmp(json_object_get_string(m), "libevent") == 0) {
		CU_ASSERT(json_object_object_get_ex(o, "detail", &f));
		s->libevent = true;
	}
}

static void
alarm_fail(int sig)
{
	static const char msg[] = "test_log: a log call blocked on a full pipe\n";

	(void)!write(2, msg, sizeof msg - 1);
	_exit(1);
}

static void
test_unread_stderr_never_blocks(void)
{
	struct event_base *base = event_base_new();
	char pad[200], *out = NULL;
	size_t n = 0;
	struct seq s = { 0 };
	uint64_t dropped0 = log_dropped();
	int p[2];

	memset(pad, 'p', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	make_pipe(p, 4096);
	log_set_fd(p[1]);
	CU_ASSERT_EQUAL_FATAL(log_attach(base, 16 * 1024), 0);
	/* Nobody reads: 2000 lines of 250 bytes are 500 KB, far over what
	 * the pipe and the queue hold. A blocking write would hang here. */
	signal(SIGALRM, alarm_fail);
	alarm(10);
	for (long i = 0; i < 2000; i++)
		log_info("line", LOG_I("i", i), LOG_S("pad", pad));
	alarm(0);
	CU_ASSERT(log_dropped() - dropped0 > 1000);
	CU_ASSERT(log_queued() <= 16 * 1024 + 512);
	/* The reader comes back: the queue drains on the loop. */
	for (int round = 0; round < 1000 && (log_queued() > 0 || n == 0); round++) {
		drain(p[0], &out, &n);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	drain(p[0], &out, &n);
	event_base_loop(base, EVLOOP_NONBLOCK);
	drain(p[0], &out, &n);
	CU_ASSERT_EQUAL(log_queued(), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	each_line(out, check_seq, &s);
	CU_ASSERT(s.seen > 0);
	CU_ASSERT_EQUAL((uint64_t)(s.seen + s.dropped_reported), 2000);
	CU_ASSERT_EQUAL((uint64_t)s.dropped_reported, log_dropped() - dropped0);
	log_detach(100);
	log_set_fd(-1);
	close(p[0]);
	close(p[1]);
	free(out);
	event_base_free(base);
}

static void
test_libevent_messages_and_flush(void)
{
	struct event_base *base = event_base_new();
	char *out = NULL;
	size_t n = 0;
	struct seq s = { 0 };
	int p[2];

	make_pipe(p, 4096);
	log_set_fd(p[1]);
	CU_ASSERT_EQUAL_FATAL(log_attach(base, 64 * 1024), 0);
	/* libevent warns about a bad descriptor: through our logger. */
	evutil_make_socket_nonblocking(-1);
	/* Fill the pipe and queue some; no loop turn runs, then detach flushes
	 * once the reader has made room (it reads everything it is given). */
	for (long i = 0; i < 100; i++)
		log_info("line", LOG_I("i", i),
		    LOG_S("pad", "0123456789012345678901234567890123456789"));
	CU_ASSERT(log_queued() > 0);
	drain(p[0], &out, &n);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	log_detach(1000);
	drain(p[0], &out, &n);
	CU_ASSERT_EQUAL(log_queued(), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	each_line(out, check_seq, &s);
	CU_ASSERT_EQUAL(s.seen, 100);
	CU_ASSERT(s.libevent);
	log_set_fd(-1);
	close(p[0]);
	close(p[1]);
	free(out);
	event_base_free(base);
}

static const struct unit_test tests[] = {
	{ "a line cut for size is valid JSON", test_truncated_lines_are_json },
	{ "an unread stderr never blocks; drops are counted and reported",
	    test_unread_stderr_never_blocks },
	{ "libevent messages are JSON lines; detach flushes the queue",
	    test_libevent_messages_and_flush },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("log", tests);
}
