/* runtime/core/fs.c — map, read, list, join (fs.h). */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mmap, O_CLOEXEC, dirent */
#endif

#include "core/fs.h"

#include "core/str.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

/* What a file of mode m is, for the messages of sky_fs_open_regular. */
static const char *file_type(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

sky_status sky_fs_open_regular(const char *path, const char *kind, int *fd, sky_err *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0) return sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    sky_status  s = SKY_OK;
    if (fstat(*fd, &st) != 0)
        s = sky_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = sky_fail(err, "%s: is %s, not a %s; give the file itself", path, file_type(st.st_mode), kind);
    else if (fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK) != 0)
        s = sky_fail(err, "%s: cannot clear O_NONBLOCK: %s", path, strerror(errno));
    if (s != SKY_OK) {
        close(*fd);
        *fd = -1;
    }
    return s;
}

sky_status sky_fs_check_regular(const char *path, const char *kind, sky_err *err)
{
    int fd;
    if (sky_fs_open_regular(path, kind, &fd, err)) return SKY_ERR;
    close(fd);
    return SKY_OK;
}

char *sky_fs_temp_template(const char *path)
{
    const char *base = sky_fs_base_name(path);
    const int   dir_len = (int)(base - path); /* keeps the '/' */
    const int   n = snprintf(NULL, 0, "%.*s.%s.sky-%ld.XXXXXX", dir_len, path, base, (long)getpid());
    char       *t = malloc((size_t)n + 1);
    if (t != NULL) snprintf(t, (size_t)n + 1, "%.*s.%s.sky-%ld.XXXXXX", dir_len, path, base, (long)getpid());
    return t;
}

/* The pid of name when it is a temporary file of sky_fs_temp_template's pattern (for base, or any base when
 * NULL), else 0. */
static long temp_pid(const char *name, const char *base)
{
    const size_t n = strlen(name);
    if (n < 1 + 1 + 5 + 1 + 1 + 6 || name[0] != '.' || name[n - 7] != '.') return 0;
    for (size_t i = n - 6; i < n; i++)
        if (!isalnum((unsigned char)name[i])) return 0;
    size_t d = n - 7; /* the digits of the pid end here */
    size_t b = d;
    while (b > 0 && isdigit((unsigned char)name[b - 1])) b--;
    if (b == d || b < 6 || memcmp(name + b - 5, ".sky-", 5) != 0) return 0;
    const size_t base_len = b - 5 - 1;
    if (base != NULL && (strlen(base) != base_len || memcmp(name + 1, base, base_len) != 0)) return 0;
    return strtol(name + b, NULL, 10);
}

sky_status sky_fs_remove_stale_temps(const char *dir, const char *base, int *removed, sky_err *err)
{
    if (removed) *removed = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return SKY_OK;
        return sky_fail(err, "%s: cannot list the folder for stale temporary files: %s", dir, strerror(errno));
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const long pid = temp_pid(e->d_name, base);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *full = sky_fs_join(dir, e->d_name);
        if (full != NULL && unlink(full) == 0 && removed) (*removed)++;
        free(full);
    }
    closedir(d);
    return SKY_OK;
}

sky_status sky_fs_map(const char *path, const char *kind, void **map, size_t *size, sky_err *err)
{
    *map = NULL;
    *size = 0;
    int fd;
    if (sky_fs_open_regular(path, kind, &fd, err)) return SKY_ERR;
    struct stat st;
    sky_status  s = SKY_OK;
    if (fstat(fd, &st) != 0) {
        s = sky_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    } else if ((unsigned long long)st.st_size > SIZE_MAX) {
        s = sky_fail(err, "%s: file of %lld bytes is too large to map", path, (long long)st.st_size);
    } else if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            s = sky_fail(err, "%s: mmap of %zu bytes failed: %s", path, (size_t)st.st_size, strerror(errno));
        else
            *map = m, *size = (size_t)st.st_size;
    }
    close(fd);
    return s;
}

void sky_fs_unmap(void *map, size_t size)
{
    if (map != NULL) munmap(map, size);
}

sky_status sky_fs_read_small(const char *path, size_t max, const char *what, char **buf, size_t *len, sky_err *err)
{
    *buf = NULL;
    int         fd;
    const char *kind = what + (strncmp(what, "an ", 3) == 0 ? 3 : strncmp(what, "a ", 2) == 0 ? 2 : 0);
    if (sky_fs_open_regular(path, kind, &fd, err)) return SKY_ERR;
    struct stat st;
    sky_status  s = SKY_OK;
    if (fstat(fd, &st) != 0) {
        s = sky_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    } else if ((unsigned long long)st.st_size > max) {
        s = sky_fail(err, "%s: %lld bytes exceeds the limit of %llu for %s", path, (long long)st.st_size,
                     (unsigned long long)max, what);
    } else if ((*buf = malloc((size_t)st.st_size + 1)) == NULL) {
        s = sky_fail(err, "%s: out of memory", path);
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t r = read(fd, *buf + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                s = sky_fail(err, "%s: read failed after %zu of %zu bytes", path, got, want);
                break;
            }
            got += (size_t)r;
        }
        *len = got;
    }
    close(fd);
    if (s != SKY_OK) {
        free(*buf);
        *buf = NULL;
    }
    return s;
}

/* strcmp for qsort over an array of char *. */
static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if dir/name is a regular file (symlinks followed). */
static int is_regular(const char *dir, const char *name)
{
    char       *full = sky_fs_join(dir, name);
    struct stat sb;
    int         reg = full != NULL && stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
    free(full);
    return reg;
}

sky_status sky_fs_list_dir(const char *dir, const char *suffix, char ***names, int *n, sky_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL) return sky_fail(err, "%s: cannot list the directory: %s", dir, strerror(errno));
    char     **v = NULL;
    size_t     cap = 0, k = 0;
    sky_status st = SKY_OK;
    for (struct dirent *e; st == SKY_OK && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || !sky_str_ends_with(e->d_name, suffix) || !is_regular(dir, e->d_name)) continue;
        if (k == cap) {
            size_t cap2 = cap ? cap * 2 : 16;
            char **v2 = cap2 < (size_t)INT_MAX ? realloc(v, cap2 * sizeof *v) : NULL;
            if (v2 == NULL) {
                st = sky_fail(err, "%s: out of memory listing the directory", dir);
                break;
            }
            v = v2;
            cap = cap2;
        }
        if ((v[k] = sky_str_dup(e->d_name)) == NULL)
            st = sky_fail(err, "%s: out of memory", dir);
        else
            k++;
    }
    closedir(d);
    if (st == SKY_OK && k > 1) qsort(v, k, sizeof *v, str_ptr_cmp);
    *names = v;
    *n = (int)k;
    return st;
}

void sky_fs_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char *sky_fs_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char  *p = malloc(a + b + 2);
    if (p == NULL) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

const char *sky_fs_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* mkdir -p (fs.h). */
sky_status sky_fs_mkdirs(const char *dir, sky_err *err)
{
    char path[4096];
    if (dir[0] == '\0') return sky_fail(err, "cannot create a folder with an empty name");
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path) {
        errno = ENAMETOOLONG;
        return sky_fail(err, "cannot create the folder %.64s...: its path is too long", dir);
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return sky_fail(err, "cannot create the folder %s: %s", path, strerror(errno));
        *p = c;
        if (c == '\0' || p[1] == '\0') break;
    }
    struct stat st;
    if (stat(dir, &st) != 0) return sky_fail(err, "cannot create the folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return sky_fail(err, "%s: exists and is not a folder", dir);
    }
    return SKY_OK;
}
