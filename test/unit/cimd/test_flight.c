/*
 * Single-flight waiters: one flight per URL in its list, waiters answered in
 * the order they joined, a leave while answering neither frees the flight
 * nor is answered, and only the last leave before answering tells the owner
 * to cancel.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/cimd/flight.h"
#include "test/unit/unit.h"

static void
test_find_and_detach(void)
{
	struct flight_list list;
	struct flight a, b;

	TAILQ_INIT(&list);
	flight_init(&a, &list, "https://a.example/c.json");
	flight_init(&b, &list, "https://b.example/c.json");
	CU_ASSERT_PTR_EQUAL(flight_find(&list, "https://a.example/c.json"), &a);
	CU_ASSERT_PTR_EQUAL(flight_find(&list, "https://b.example/c.json"), &b);
	CU_ASSERT_PTR_NULL(flight_find(&list, "https://a.example/c.jso"));
	flight_detach(&a, &list);
	/* detached: a new lookup of the URL starts another flight */
	CU_ASSERT_PTR_NULL(flight_find(&list, "https://a.example/c.json"));
	CU_ASSERT_PTR_EQUAL(TAILQ_FIRST(&list), &b);
	flight_detach(&b, &list);
	CU_ASSERT_TRUE(TAILQ_EMPTY(&list));
	flight_dispose(&a);
	flight_dispose(&b);
}

static void
test_answer_in_order(void)
{
	struct flight_list list;
	struct flight f;
	struct flight_waiter w[3];

	TAILQ_INIT(&list);
	flight_init(&f, &list, "https://a.example/c.json");
	for (int i = 0; i < 3; i++)
		flight_join(&f, &w[i]);
	CU_ASSERT_EQUAL(f.n_waiters, 3);
	CU_ASSERT_FALSE(f.completing);
	CU_ASSERT_PTR_EQUAL(flight_next(&f), &w[0]);
	CU_ASSERT_TRUE(f.completing);
	CU_ASSERT_PTR_NULL(w[0].f);
	/* answering w[0] cancelled w[2]: it leaves, is not answered, and
	 * the flight (being answered) is not the caller's to free */
	CU_ASSERT_FALSE(flight_leave(&w[2]));
	CU_ASSERT_PTR_EQUAL(flight_next(&f), &w[1]);
	CU_ASSERT_PTR_NULL(flight_next(&f));
	CU_ASSERT_EQUAL(f.n_waiters, 0);
	flight_detach(&f, &list);
	flight_dispose(&f);
}

static void
test_last_leave(void)
{
	struct flight_list list;
	struct flight f;
	struct flight_waiter a, b;

	TAILQ_INIT(&list);
	flight_init(&f, &list, "https://a.example/c.json");
	flight_join(&f, &a);
	flight_join(&f, &b);
	CU_ASSERT_FALSE(flight_leave(&b)); /* a still waits */
	CU_ASSERT_EQUAL(f.n_waiters, 1);
	CU_ASSERT_TRUE(flight_leave(&a)); /* nobody left: cancel the fetch */
	CU_ASSERT_EQUAL(f.n_waiters, 0);
	CU_ASSERT_PTR_NULL(a.f);
	flight_detach(&f, &list);
	flight_dispose(&f);
	CU_ASSERT_PTR_NULL(f.url);
}

static const struct unit_test tests[] = {
	{ "find and detach", test_find_and_detach },
	{ "answer in order", test_answer_in_order },
	{ "last leave", test_last_leave },
	{ NULL, NULL },
};

int
main(void)
{
	return unit_run("flight", tests);
}
