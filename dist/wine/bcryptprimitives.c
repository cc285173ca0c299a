/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Rust's std (1.78+) imports
 * ProcessPrng from it for its random numbers (HashMap seeds). This stand-in
 * exports only ProcessPrng, implemented with advapi32's SystemFunction036
 * (RtlGenRandom), which Wine has. Only for running tests under Wine; a real
 * Windows host has the system DLL. Built by .ci/windows.sh:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills `data` with `len` random bytes; TRUE on success (as Windows' ProcessPrng). */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
