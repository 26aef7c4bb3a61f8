/*
 * bdb_recover.c: let BerkeleyDB SQL recover an environment whose users died.
 *
 * BerkeleyDB SQL (libdb_sql 5.3) opens a database's environment, the
 * "<database>-journal" directory, with DB_REGISTER | DB_FAILCHK_ISALIVE |
 * DB_RECOVER (measured: flags 0x42763). DB_REGISTER keeps one slot per process
 * in "__db.register", each slot held by an fcntl lock of its process; a slot
 * that is filled in but not locked belongs to a process that died with the
 * environment open. Finding one, BerkeleyDB first tries "failchk": it attaches
 * to the existing shared regions (__db.001, ...) to clean up after the dead
 * process in place. If the dead process held a region mutex that attaching
 * takes, that attach never returns. Seen in gdb with libdb 5.3.28:
 * __envreg_register -> __env_attach_regions -> __env_set_state (the
 * environment region's mutex) or __mutex_alloc_int (the mutex region's) ->
 * __db_pthread_mutex_lock, which either retries pthread_mutex_trylock forever
 * at 100% CPU (its dead-owner check calls __env_set_state(THREAD_VERIFY),
 * which fails while the opening thread is not registered, and the loop just
 * tries again) or blocks in pthread_mutex_lock "until someone else does the
 * cleanup". sqlnb's own DB_JOINENV handle (bdb_locks.c) blocked on the
 * same mutexes (__env_set_state, __memp_open).
 *
 * When failchk cannot attach (no region files), BerkeleyDB falls back to its
 * other DB_REGISTER path: full recovery, which removes the regions itself
 * (__env_remove_env), creates new ones with BerkeleyDB SQL's own
 * configuration and replays the log files. So before this process opens such
 * an environment, sqlnb_bdb_clear_dead_env() does what decides between the
 * two: when the registry lists dead processes and no live one, it removes the
 * region files, and BerkeleyDB SQL's next open runs full recovery. Nothing else
 * is touched: the registry (whose dead slots trigger the recovery), the log
 * files and the database file stay as they are. Committed transactions are in
 * the log files (BerkeleyDB SQL writes and fdatasyncs the log at each commit),
 * so recovery keeps them, and it rolls back what the dead writer left
 * unfinished. The regions hold nothing recovery would use: it discards them
 * too.
 *
 * Safety:
 * * Regions are removed only when every registered process is dead, decided
 *   the way BerkeleyDB decides it (a registered slot whose byte can be locked),
 *   while holding the registry's exclusive lock (byte 1), which every
 *   DB_REGISTER opener takes before it reads or adds slots. An opener that
 *   comes later finds the dead slots and recovers; one that came earlier holds
 *   its slot and counts as live, and then nothing is removed.
 * * With a live process registered too, nothing is done (removing its regions
 *   would split the environment in two); BerkeleyDB is left to its own ways.
 * * fcntl locks belong to a process, and closing any descriptor of a file drops
 *   all of the process's locks on it. So when this process already has the
 *   registry open (a BerkeleyDB handle on the environment lives here), the
 *   function returns at once without opening the file. The caller must also
 *   keep other threads of the process from opening the environment while it
 *   runs (sqlnb/engines/bdb.py does so under its lock). The probes use open file
 *   description locks where available, which also conflict with this process's
 *   own fcntl locks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdb_recover.h"

#define REG_FILE "__db.register"
#define SLOT_LEN 25                                   /* PID_LEN in env_register.c */
static const char SLOT_EMPTY[] = "X                      0\n";  /* PID_EMPTY */
#define EXCL_BYTE 1                                   /* REGISTRY_EXCL_LOCK */
#define EXCL_TRIES 200                                /* x 10 ms */

/* Lock (F_WRLCK) or unlock (F_UNLCK) one byte without waiting: 0, or -1 with errno. */
static int lock_byte(int fd, off_t pos, short type) {
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = pos;
    fl.l_len = 1;
#ifdef F_OFD_SETLK
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
#endif
    return fcntl(fd, F_SETLK, &fl);
}

/* 1 if a descriptor of this process refers to the file `st` describes, else 0. */
static int open_in_this_process(const struct stat *st) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    struct stat fst;
    int found = 0;
    if (d == NULL)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd == dirfd(d))
            continue;
        if (fstat((int)fd, &fst) == 0 && fst.st_dev == st->st_dev && fst.st_ino == st->st_ino)
            found = 1;
    }
    closedir(d);
    return found;
}

static int is_region_file(const char *name) {
    /* "__db.001", "__db.002", ...: BerkeleyDB's shared region files */
    return strlen(name) == 8 && strncmp(name, "__db.", 5) == 0 && name[5] >= '0' && name[5] <= '9' &&
           name[6] >= '0' && name[6] <= '9' && name[7] >= '0' && name[7] <= '9';
}

/* Remove the region files in `home`, the primary one (__db.001) last, as BerkeleyDB does. */
static int remove_regions(const char *home, char *err, int errlen) {
    char path[4096];
    DIR *d = opendir(home);
    struct dirent *e;
    int rc = 0;
    if (d == NULL) {
        snprintf(err, errlen, "cannot list %s: %s", home, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_region_file(e->d_name) || strcmp(e->d_name, "__db.001") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", home, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    snprintf(path, sizeof(path), "%s/__db.001", home);
    if (rc == 0 && unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

int sqlnb_bdb_clear_dead_env(const char *home, char *err, int errlen) {
    char path[4096];
    char *buf = NULL;
    struct stat st;
    int fd, rc, tries, dead = 0, live = 0;
    off_t pos;
    ssize_t n;

    err[0] = '\0';
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", home, REG_FILE) >= sizeof(path)) {
        snprintf(err, errlen, "path too long: %s", home);
        return -1;
    }
    if (stat(path, &st) != 0)
        return SQLNB_ENV_HEALTHY; /* no registry: no environment, or one never opened with DB_REGISTER */
    if (open_in_this_process(&st))
        return SQLNB_ENV_OPEN_HERE;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return SQLNB_ENV_HEALTHY;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    for (tries = 0; lock_byte(fd, EXCL_BYTE, F_WRLCK) != 0; tries++) {
        if ((errno != EAGAIN && errno != EACCES) || tries == EXCL_TRIES) {
            close(fd);
            return SQLNB_ENV_BUSY;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Read the slots only now: an opener may have added itself while we waited. */
    if (fstat(fd, &st) != 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
        goto done;
    }
    n = pread(fd, buf, (size_t)st.st_size, 0);
    if (n < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
        goto done;
    }
    for (pos = 0; pos < n; pos += SLOT_LEN) {
        if (n - pos < SLOT_LEN) {
            dead++; /* a partial slot: an opener died while registering (BerkeleyDB recovers too) */
            break;
        }
        if (memcmp(buf + pos, SLOT_EMPTY, SLOT_LEN) == 0)
            continue;
        if (lock_byte(fd, pos, F_WRLCK) == 0) {
            (void)lock_byte(fd, pos, F_UNLCK);
            dead++; /* a filled-in slot nobody holds: its process died with the environment open */
        } else if (errno == EAGAIN || errno == EACCES) {
            live++;
        } else {
            snprintf(err, errlen, "cannot probe %s: %s", path, strerror(errno));
            rc = -1;
            goto done;
        }
    }
    if (dead == 0)
        rc = SQLNB_ENV_HEALTHY;
    else if (live > 0)
        rc = SQLNB_ENV_SHARED_DEAD;
    else
        rc = remove_regions(home, err, errlen) == 0 ? SQLNB_ENV_CLEARED : -1;
done:
    free(buf);
    (void)lock_byte(fd, EXCL_BYTE, F_UNLCK);
    close(fd); /* releases our locks; this process held no others on the file (checked above) */
    return rc;
}
