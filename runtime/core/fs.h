/* runtime/core/fs.h — the file-system helpers the readers share: map a file, read a small one,
 * list a directory, join and split paths.
 *
 * Every failure returns SKY_ERR with a message that starts with the path (status.h); nothing
 * here prints. Paths are POSIX ('/' separated).
 */
#ifndef SKY_FS_H
#define SKY_FS_H

#include <stddef.h>

#include "core/status.h"

/* Open the file at path for reading (O_RDONLY | O_CLOEXEC) after checking that it is a regular file: opened
 * with O_NONBLOCK, so that a FIFO without a writer or a device cannot block the open, then fstat'ed, then
 * O_NONBLOCK cleared. A FIFO, a character or block device, a socket or a directory is refused naming the path
 * and what it is ("<path>: is a FIFO (named pipe), not a <kind>"; kind e.g. "tokenizer file"). Every reader
 * of the engine opens its files through here (sky_fs_map, sky_fs_read_small, the tokenizer). On success *fd
 * is the open descriptor (the caller closes it); on failure -1. */
sky_status sky_fs_open_regular(const char *path, const char *kind, int *fd, sky_err *err);

/* sky_fs_open_regular, then close: for readers that open the file themselves (FFmpeg's avformat_open_input),
 * called just before they do. */
sky_status sky_fs_check_regular(const char *path, const char *kind, sky_err *err);

/* The engine's temporary file for an output at path, a mkstemp template beside it:
 * "<dir>/.<base>.sky-<pid>.XXXXXX" (malloc'ed; NULL when out of memory). The writers of the mp4 and of
 * .safetensors files (the latents, --resume_dir's windows) write there and rename onto path. */
char *sky_fs_temp_template(const char *path);

/* Remove the temporary files of sky_fs_temp_template's pattern in folder dir (for the output named base, or
 * for any output when base is NULL) whose process is gone: the leftovers of a run killed by SIGKILL or a
 * crash. Those of a live process (another run writing the same output) are kept. *removed (may be NULL) counts
 * the files removed. A folder that does not exist has none; fails only when dir cannot be listed. */
sky_status sky_fs_remove_stale_temps(const char *dir, const char *base, int *removed, sky_err *err);

/* Map the regular file at path read-only (MAP_PRIVATE) into *map, its size into *size; the fd is
 * closed before returning. An empty file is not mapped (mmap refuses 0 bytes): *map = NULL and
 * *size = 0 with SKY_OK, so the caller's size check decides. Fails naming the path when it cannot
 * be opened or stat'ed, is not a regular file ("is a directory, not a <kind>", kind e.g.
 * ".safetensors file"), is too large for the address space, or mmap fails. Undo with sky_fs_unmap. */
sky_status sky_fs_map(const char *path, const char *kind, void **map, size_t *size, sky_err *err);

/* munmap a mapping from sky_fs_map; NULL is fine. */
void sky_fs_unmap(void *map, size_t size);

/* Read the whole regular file at path (at most max bytes) into *buf (malloc'ed, one spare byte after
 * the *len bytes read). A larger file fails with "<path>: N bytes exceeds the limit of MAX for <what>"
 * (what e.g. "an index file"). On failure *buf is NULL. */
sky_status sky_fs_read_small(const char *path, size_t max, const char *what, char **buf, size_t *len, sky_err *err);

/* The names in dir that end with suffix, do not start with '.' and are regular files (symlinks
 * followed), sorted by strcmp. *names is malloc'ed and so is each name: free with sky_fs_free_names
 * (also after a failure: what was listed so far is returned). */
sky_status sky_fs_list_dir(const char *dir, const char *suffix, char ***names, int *n, sky_err *err);
void       sky_fs_free_names(char **names, int n);

/* mkdir -p: create folder dir and the folders above it that are missing (mode 0777 less the umask); an
 * existing folder is fine. Fails with "cannot create the folder <path>: <reason>" naming the first folder
 * that could not be made (errno is left set to the reason), or "<dir>: exists and is not a folder". */
sky_status sky_fs_mkdirs(const char *dir, sky_err *err);

/* malloc'ed "dir/name", or NULL when out of memory. */
char *sky_fs_join(const char *dir, const char *name);

/* The part of path after its last '/' (path itself when there is none). */
const char *sky_fs_base_name(const char *path);

#endif /* SKY_FS_H */
