/*
 * HTTP/1.1 request parsing (see http1.h). The head is found, copied once
 * into one allocation and cut into NUL-terminated pieces in place; the
 * header array lives in the same allocation. Everything is bounded by the
 * limits passed in, and anything RFC 9112 calls a smuggling risk is refused
 * rather than interpreted: obs-fold, whitespace before the colon,
 * Content-Length with Transfer-Encoding, differing Content-Lengths, any
 * transfer coding other than chunked.
 */
#include "proxy/http1.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"

/* RFC 9110 tchar */

int64_t
h1_parse_length(const char *v)
{
	size_t digits = strspn(v, "0123456789");
	int64_t n = 0;

	if (digits == 0 || v[digits] != '\0' || digits > 18)
		return -1;
	for (size_t k = 0; k < digits; k++)
		n = n * 10 + (v[k] - '0');
	return n;
}
static bool
h1_tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr(extra, c) != NULL;
}

/* Field-value octets: VCHAR, SP, HTAB, obs-text. */
static bool
h1_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Are all n bytes at v field-value octets? Eight at a time: a word with no
 * byte below 0x20 and none equal to 0x7f is fine as it is (bearer tokens
 * make values of a kilobyte); a word with one is looked at byte by byte. */
static bool
h1_value_ok(const char *v, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, del;

		memcpy(&x, v + i, 8);
		del = x ^ (0x7f * ones);
		if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs) {
			for (size_t k = i; k < i + 8; k++) {
				if (!h1_vchar((unsigned char)v[k]))
					return false;
			}
		}
	}
	for (; i < n; i++) {
		if (!h1_vchar((unsigned char)v[i]))
			return false;
	}
	return true;
}

bool
h1_token_in_list(const char *list, const char *token)
{
	size_t n = strlen(token);

	if (list == NULL)
		return false;
	for (const char *p = list; *p != '\0';) {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == n && strncasecmp(p, token, n) == 0)
			return true;
		p += len;
	}
	return false;
}

static enum h1_method
h1_method_of(const char *m)
{
	static const struct {
		const char *name;
		enum h1_method method;
	} methods[] = {
		{ "GET", H1_GET },
		{ "POST", H1_POST },
		{ "HEAD", H1_HEAD },
		{ "PUT", H1_PUT },
		{ "DELETE", H1_DELETE },
		{ "OPTIONS", H1_OPTIONS },
		{ "PATCH", H1_PATCH },
	};

	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].method;
	}
	return H1_OTHER;
}

void
h1_request_dispose(struct h1_request *req)
{
	free(req->mem);
	memset(req, 0, sizeof *req);
	req->content_length = -1;
}

const char *
h1_header_find(const struct h1_request *req, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < req->n_headers; i++) {
		if (req->headers[i].name_len == n && strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	}
	return NULL;
}

/* Split the target into path and query (in the head copy). */
static int
h1_split_target(struct h1_request *req, char *t)
{
	char *p = t, *q;

	if (t[0] != '/') {
		/* absolute-form: scheme "://" authority [path] */
		if (strncasecmp(t, "http://", 7) == 0) {
			p = t + 7;
		} else if (strncasecmp(t, "https://", 8) == 0) {
			p = t + 8;
			req->https = true;
		} else {
			return -1;
		}
		req->authority = req->target + (p - t);
		req->authority_len = strcspn(p, "/?#");
		p += req->authority_len;
		if (*p != '/') {
			/* no path: "/" and whatever query follows */
			req->path = "/";
			if (*p == '?') {
				req->query = p + 1;
				p[strcspn(p, "#")] = '\0';
			} else {
				*p = '\0';
			}
			return 0;
		}
	}
	if ((q = strchr(p, '#')) != NULL)
		*q = '\0';
	if ((q = strchr(p, '?')) != NULL) {
		*q = '\0';
		req->query = q + 1;
	}
	req->path = p;
	return 0;
}

/* Framing and connection semantics from the parsed headers. */
static int
h1_framing(struct h1_request *req, int *status, const char **err)
{
	const char *te = NULL;
	int hosts = 0;
	bool close = false, keep = false;

	for (size_t i = 0; i < req->n_headers; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;

		if (strcasecmp(n, "Content-Length") == 0) {
			int64_t cl = h1_parse_length(v);

			if (cl < 0) {
				*err = "malformed Content-Length";
				return -1;
			}
			if (req->content_length >= 0 && req->content_length != cl) {
				*err = "conflicting Content-Length headers";
				return -1;
			}
			req->content_length = cl;
		} else if (strcasecmp(n, "Transfer-Encoding") == 0) {
			if (te != NULL) {
				*err = "more than one Transfer-Encoding header";
				return -1;
			}
			te = v;
		} else if (strcasecmp(n, "Connection") == 0) {
			close = close || h1_token_in_list(v, "close");
			keep = keep || h1_token_in_list(v, "keep-alive");
		} else if (strcasecmp(n, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(n, "Expect") == 0) {
			if (strcasecmp(v, "100-continue") != 0) {
				*status = 417;
				*err = "unsupported expectation";
				return -1;
			}
			req->expect_continue = req->minor >= 1;
		}
	}
	if (te != NULL) {
		if (req->minor == 0) {
			*err = "Transfer-Encoding in an HTTP/1.0 request";
			return -1;
		}
		if (req->content_length >= 0) {
			*err = "both Content-Length and Transfer-Encoding";
			return -1;
		}
		if (strcasecmp(te, "chunked") != 0) {
			*status = 501;
			*err = "unsupported transfer coding";
			return -1;
		}
		req->chunked = true;
	}
	if (hosts > 1 || (hosts == 0 && req->minor >= 1)) {
		*err = hosts > 1 ? "more than one Host header" : "no Host header";
		return -1;
	}
	req->keepalive = req->minor >= 1 ? !close : keep && !close;
	return 0;
}

/* Parse the request line and header lines of a complete head (head_len
 * bytes at text, NUL-terminated copy). */
static int
h1_parse_lines(struct h1_request *req, char *text, char *target_copy, int *status, const char **err)
{
	char *line = text, *next, *sp, *t;
	size_t tlen;

	next = strchr(line, '\n');
	*next++ = '\0';
	if (next - line >= 2 && next[-2] == '\r')
		next[-2] = '\0';
	/* method SP request-target SP HTTP-version */
	for (sp = line; h1_tchar((unsigned char)*sp); sp++)
		;
	if (sp == line || *sp != ' ') {
		*err = "malformed request line";
		return -1;
	}
	*sp = '\0';
	req->method_name = line;
	req->method = h1_method_of(line);
	t = sp + 1;
	for (sp = t; *sp != '\0' && *sp != ' '; sp++) {
		if ((unsigned char)*sp <= 0x20 || *sp == 0x7f) {
			*err = "malformed request target";
			return -1;
		}
	}
	tlen = (size_t)(sp - t);
	if (tlen > H1_MAX_TARGET) {
		*status = 414;
		*err = "the request target is too long";
		return -1;
	}
	if (tlen == 0 || *sp != ' ') {
		*err = "malformed request line";
		return -1;
	}
	*sp++ = '\0';
	if (strncmp(sp, "HTTP/", 5) != 0 || sp[5] < '0' || sp[5] > '9' || sp[6] != '.' ||
	    sp[7] < '0' || sp[7] > '9' || sp[8] != '\0') {
		*err = "malformed HTTP version";
		return -1;
	}
	if (sp[5] != '1') {
		*status = 505;
		*err = "only HTTP/1.x is served";
		return -1;
	}
	req->minor = sp[7] - '0';
	memcpy(target_copy, t, tlen + 1);
	req->target = target_copy;
	if (h1_split_target(req, t) != 0) {
		*err = "the request target must be a path or an absolute http(s) URL";
		return -1;
	}
	/* header fields */
	for (line = next; *line != '\0'; line = next) {
		char *colon, *v, *e;

		next = strchr(line, '\n');
		*next++ = '\0';
		if (next - line >= 2 && next[-2] == '\r')
			next[-2] = '\0';
		if (*line == '\0')
			break; /* the empty line ending the head */
		if (*line == ' ' || *line == '\t') {
			*err = "obsolete line folding";
			return -1;
		}
		for (colon = line; h1_tchar((unsigned char)*colon); colon++)
			;
		if (colon == line || *colon != ':') {
			*err = "malformed header field";
			return -1;
		}
		*colon = '\0';
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = v + strlen(v);
		if (!h1_value_ok(v, (size_t)(e - v))) {
			*err = "invalid character in a header value";
			return -1;
		}
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		req->headers[req->n_headers].name = line;
		req->headers[req->n_headers].value = v;
		req->headers[req->n_headers].name_len = (size_t)(colon - line);
		req->n_headers++;
	}
	return h1_framing(req, status, err);
}

int
h1_parse_request(const char *buf, size_t len, size_t max_head, size_t *scan, struct h1_request *req,
    int *status, const char **err)
{
	struct h1_limits lim = { .max_head = max_head, .max_headers = 0, .crlf_only = false };

	return h1_parse_request_limits(buf, len, &lim, scan, req, status, err);
}

int
h1_parse_request_limits(const char *buf, size_t len, const struct h1_limits *lim, size_t *scan,
    struct h1_request *req, int *status, const char **err)
{
	size_t max_head = lim->max_head;
	size_t start = 0, end = 0, i, lines = 0, hlen;
	const char *nl;
	char *text;

	memset(req, 0, sizeof *req);
	req->content_length = -1;
	*status = 400;
	*err = NULL;
	/* Empty lines before a request line are ignored (RFC 9112 §2.2). */
	while (start < len && (buf[start] == '\r' || buf[start] == '\n') && start < 64)
		start++;
	if (start == 64) {
		*err = "too many empty lines";
		return -1;
	}
	i = *scan > start ? *scan : start;
	while (i < len && (nl = memchr(buf + i, '\n', len - i)) != NULL) {
		i = (size_t)(nl - buf);
		if (i + 1 < len && buf[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			break;
		}
		if (i + 1 >= len || (i + 2 >= len && buf[i + 1] == '\r'))
			break; /* maybe the end, once more bytes come */
		i++;
	}
	*scan = i;
	if (end == 0) {
		if (len - start > max_head) {
			*status = memchr(buf + start, '\n', len - start) == NULL ? 414 : 431;
			*err = *status == 414 ? "the request target is too long"
					      : "the request header is too large";
			return -1;
		}
		if (memchr(buf + start, '\n', len - start) == NULL &&
		    len - start > H1_MAX_TARGET + 64) {
			*status = 414;
			*err = "the request target is too long";
			return -1;
		}
		return 0;
	}
	hlen = end - start;
	if (hlen > max_head) {
		*status = 431;
		*err = "the request header is too large";
		return -1;
	}
	if (memchr(buf + start, '\0', hlen) != NULL) {
		*err = "NUL in the request head";
		return -1;
	}
	if (lim->crlf_only) {
		for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + end - p))) != NULL;
		     p++) {
			if (p == buf || p[-1] != '\r') {
				*err = "a line of the request head ends in a bare LF, not CRLF";
				return -1;
			}
		}
	}
	for (const char *p = buf + start; (p = memchr(p, '\n', (size_t)(buf + end - p))) != NULL;
	     p++)
		lines++;
	/* the request line and the empty line are not fields */
	if (lim->max_headers > 0 && lines > lim->max_headers + 2) {
		*status = 431;
		*err = "too many header fields";
		return -1;
	}
	/* layout: headers[lines] | target copy (<= hlen + 1) | head text */
	req->mem = xmalloc(lines * sizeof *req->headers + 2 * (hlen + 1));
	req->headers = (struct h1_header *)(void *)req->mem;
	text = req->mem + lines * sizeof *req->headers + hlen + 1;
	memcpy(text, buf + start, hlen);
	text[hlen] = '\0';
	if (h1_parse_lines(req, text, req->mem + lines * sizeof *req->headers, status, err) != 0) {
		h1_request_dispose(req);
		return -1;
	}
	return (int)end;
}

/* Read one line (up to LF) of at most max bytes into line; its length
 * without CR LF in *n. 1 found, 0 more input, -1 too long. */
static int
h1_read_line(struct evbuffer *in, char *line, size_t max, size_t *n)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
	size_t len;

	if (p.pos < 0)
		return evbuffer_get_length(in) > max ? -1 : 0;
	len = (size_t)p.pos;
	if (len + 1 > max)
		return -1;
	evbuffer_remove(in, line, len + 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	*n = len;
	return 1;
}

int
h1_chunked_decode(struct h1_chunked *st, struct evbuffer *in, struct evbuffer *body,
    size_t max_body, size_t max_trailer, const char **err)
{
	char line[H1_MAX_CHUNK_LINE + 2];
	size_t n;
	int rc;

	for (;;) {
		switch (st->state) {
		case H1_CH_SIZE: {
			uint64_t size = 0;
			size_t k;

			rc = h1_read_line(in, line, sizeof line - 1, &n);
			if (rc <= 0) {
				if (rc < 0)
					*err = "chunk size line too long";
				return rc;
			}
			for (k = 0; k < n && line[k] != '\0' &&
			     strchr("0123456789abcdefABCDEF", line[k]) != NULL;
			     k++) {
				if (k >= 15) {
					*err = "chunk size too large";
					return -1;
				}
				size = size * 16 +
				    (uint64_t)(line[k] <= '9' ? line[k] - '0'
							      : (line[k] | 0x20) - 'a' + 10);
			}
			if (k == 0) {
				*err = "malformed chunk size";
				return -1;
			}
			while (line[k] == ' ' || line[k] == '\t')
				k++;
			if (line[k] != '\0' && line[k] != ';') {
				*err = "malformed chunk size";
				return -1;
			}
			for (; k < n; k++) {
				if (!h1_vchar((unsigned char)line[k])) {
					*err = "invalid character in a chunk extension";
					return -1;
				}
			}
			if (size > max_body || evbuffer_get_length(body) + size > max_body)
				return -2;
			st->left = size;
			st->state = size == 0 ? H1_CH_TRAILER : H1_CH_DATA;
			break;
		}
		case H1_CH_DATA: {
			size_t avail = evbuffer_get_length(in);
			size_t take = (uint64_t)avail < st->left ? avail : (size_t)st->left;

			if (take == 0)
				return 0;
			evbuffer_remove_buffer(in, body, take);
			st->left -= take;
			if (st->left == 0)
				st->state = H1_CH_DATA_END;
			break;
		}
		case H1_CH_DATA_END: {
			unsigned char c[2];
			size_t avail = evbuffer_get_length(in);

			if (avail == 0)
				return 0;
			evbuffer_copyout(in, c, avail >= 2 ? 2 : 1);
			if (c[0] == '\n') {
				evbuffer_drain(in, 1);
			} else if (c[0] == '\r' && avail < 2) {
				return 0;
			} else if (c[0] == '\r' && c[1] == '\n') {
				evbuffer_drain(in, 2);
			} else {
				*err = "chunk data not followed by CRLF";
				return -1;
			}
			st->state = H1_CH_SIZE;
			break;
		}
		case H1_CH_TRAILER:
			rc = h1_read_line(in, line, sizeof line - 1, &n);
			if (rc <= 0) {
				if (rc < 0)
					*err = "trailer line too long";
				return rc;
			}
			if (n == 0) {
				st->state = H1_CH_DONE;
				return 1;
			}
			st->trailer += n + 2;
			if (st->trailer > max_trailer) {
				*err = "trailer too large";
				return -1;
			}
			if (line[0] == ' ' || line[0] == '\t' || strchr(line, ':') == NULL) {
				*err = "malformed trailer field";
				return -1;
			}
			break;
		case H1_CH_DONE:
			return 1;
		}
	}
}

const char *
h1_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	}
	return status < 200 ? "Informational"
	    : status < 300  ? "OK"
	    : status < 400  ? "Redirect"
	    : status < 500  ? "Client Error"
			    : "Server Error";
}
