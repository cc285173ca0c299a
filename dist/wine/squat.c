/* Takes a named pipe's name before v6fw does, as any user could: dist/wine/e2e.py
 * starts this, then `v6fw.exe run --socket` on the same name, and checks that the
 * daemon filters anyway and serves the pipe once this has gone.
 *
 *     squat.exe \\.\pipe\NAME
 *
 * Creates the pipe (one instance, default security), prints "ready", and holds it
 * until its standard input ends. Built by .ci/windows.sh with mingw-w64. */
#include <stdio.h>
#include <windows.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: squat.exe \\\\.\\pipe\\NAME\n");
        return 2;
    }
    HANDLE pipe = CreateNamedPipeA(argv[1], PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                   PIPE_TYPE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0, NULL);
    if (pipe == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "CreateNamedPipe %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
    }
    CloseHandle(pipe);
    return 0;
}
