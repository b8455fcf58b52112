/*
 * mcp-proxy-runner: process entry point. Parses the command line; the
 * server is started by later steps of the foundation.
 */
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("mcp-proxy-runner %s\n", MCP_VERSION);
			return 0;
		}
	}
	fprintf(stderr, "mcp-proxy-runner: not yet runnable\n");
	return 2;
}
