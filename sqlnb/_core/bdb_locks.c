/*
 * bdb_locks.c: bounded lock waits for the BerkeleyDB SQL flavour.
 *
 * BerkeleyDB SQL blocks a statement inside its lock manager while another
 * process holds a conflicting lock, ignores sqlite3_busy_timeout, and cannot
 * be interrupted there. BerkeleyDB itself can bound such waits: a lock
 * timeout stored in the environment's shared lock region, enforced whenever
 * the lock detector runs with DB_LOCK_EXPIRE. BerkeleyDB SQL never runs the
 * detector that way, so this file does: for every environment (the
 * "<database>-journal" directory) that a bdb connection of this process uses,
 * it joins the environment with a handle of its own, sets the lock timeout,
 * and a single background thread calls lock_detect(DB_LOCK_EXPIRE) on each
 * joined environment every SQLNB_DETECT_EVERY_US. A wait that outlives the
 * timeout is refused by BerkeleyDB, and the statement fails with
 * SQLITE_LOCKED instead of blocking forever.
 *
 * lock_detect returns at once unless the region says a pass is due: a waiter
 * sets "need_dd" and the earliest expiry ("next_timeout") when it starts to
 * wait, and each pass clears both and recomputes the expiry from the waiters it
 * sees. Neither field is written under one common lock (libdb 5.3), so with
 * several processes and threads waiting and detecting, a waiter's expiry can be
 * lost: it waits with its own expiry set, but no later pass runs, and it waits
 * forever (seen with two processes on a busy machine: "lk expires" in the past,
 * need_dd 0). So before each pass the thread makes one due itself, through a
 * locker of its own that holds no locks: DB_LOCK_TIMEOUT on it sets the
 * region's next expiry to "now" (it never waits, so the pass refuses nothing of
 * its own), and the pass then refuses every wait whose expiry has passed.
 *
 * The functions are called with the GIL released; they take their own mutex.
 */
#include <db.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdb_locks.h"

#define SQLNB_DETECT_EVERY_US 20000
#define SQLNB_MAX_ENVS 64

typedef struct {
    char *home;
    DB_ENV *env;
    u_int32_t kick;  /* a locker that holds no locks: makes each detector pass due */
    int refs;
    unsigned long timeout_us;
} watched_env;

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static watched_env envs[SQLNB_MAX_ENVS];
static int n_envs = 0;
static int thread_started = 0;
static pthread_t detector;

static void *detect_loop(void *arg) {
    (void)arg;
    for (;;) {
        usleep(SQLNB_DETECT_EVERY_US);
        pthread_mutex_lock(&watch_mu);
        for (int i = 0; i < n_envs; i++) {
            int rejected = 0;
            DB_LOCKREQ due;
            memset(&due, 0, sizeof(due));
            due.op = DB_LOCK_TIMEOUT;
            (void)envs[i].env->lock_vec(envs[i].env, envs[i].kick, 0, &due, 1, NULL);
            (void)envs[i].env->lock_detect(envs[i].env, 0, DB_LOCK_EXPIRE, &rejected);
        }
        pthread_mutex_unlock(&watch_mu);
    }
    return NULL;
}

/* A forked child has no detector thread and must not use the parent's handles
 * (sqlnb refuses the bdb engine there anyway): forget them without closing. */
static void after_fork_child(void) {
    pthread_mutex_init(&watch_mu, NULL);
    n_envs = 0;
    thread_started = 0;
}

int sqlnb_bdb_lock_watch(const char *home, unsigned long timeout_us, char *err, int errlen) {
    int rc = 0, i;
    DB_ENV *env = NULL;
    u_int32_t kick = 0;
    pthread_mutex_lock(&watch_mu);
    for (i = 0; i < n_envs; i++) {
        if (strcmp(envs[i].home, home) == 0) {
            envs[i].refs++;
            if (timeout_us < envs[i].timeout_us) {
                envs[i].timeout_us = timeout_us;
                envs[i].env->set_timeout(envs[i].env, (db_timeout_t)timeout_us, DB_SET_LOCK_TIMEOUT);
            }
            goto done;
        }
    }
    if (n_envs == SQLNB_MAX_ENVS) {
        snprintf(err, errlen, "more than %d BerkeleyDB environments open at once", SQLNB_MAX_ENVS);
        rc = -1;
        goto done;
    }
    rc = db_env_create(&env, 0);
    if (rc == 0)
        rc = env->open(env, home, DB_JOINENV, 0);
    if (rc == 0)
        rc = env->set_timeout(env, (db_timeout_t)timeout_us, DB_SET_LOCK_TIMEOUT);
    if (rc == 0)
        rc = env->lock_id(env, &kick);
    if (rc != 0) {
        snprintf(err, errlen, "could not join the BerkeleyDB environment %s: %s", home, db_strerror(rc));
        if (env != NULL)
            env->close(env, 0);
        goto done;
    }
    envs[n_envs].home = strdup(home);
    envs[n_envs].env = env;
    envs[n_envs].kick = kick;
    envs[n_envs].refs = 1;
    envs[n_envs].timeout_us = timeout_us;
    n_envs++;
    if (!thread_started) {
        static int atfork_done = 0;
        if (!atfork_done) {
            pthread_atfork(NULL, NULL, after_fork_child);
            atfork_done = 1;
        }
        if (pthread_create(&detector, NULL, detect_loop, NULL) == 0) {
            pthread_detach(detector);
            thread_started = 1;
        } else {
            snprintf(err, errlen, "could not start the BerkeleyDB lock-timeout thread");
            rc = -1;
        }
    }
done:
    pthread_mutex_unlock(&watch_mu);
    return rc;
}

void sqlnb_bdb_lock_unwatch(const char *home) {
    pthread_mutex_lock(&watch_mu);
    for (int i = 0; i < n_envs; i++) {
        if (strcmp(envs[i].home, home) == 0) {
            if (--envs[i].refs == 0) {
                (void)envs[i].env->lock_id_free(envs[i].env, envs[i].kick);
                envs[i].env->close(envs[i].env, 0);
                free(envs[i].home);
                envs[i] = envs[n_envs - 1];
                n_envs--;
            }
            break;
        }
    }
    pthread_mutex_unlock(&watch_mu);
}

long sqlnb_bdb_lock_timeouts(const char *home) {
    long n = -1;
    pthread_mutex_lock(&watch_mu);
    for (int i = 0; i < n_envs; i++) {
        if (strcmp(envs[i].home, home) == 0) {
            DB_LOCK_STAT *sp = NULL;
            if (envs[i].env->lock_stat(envs[i].env, &sp, 0) == 0 && sp != NULL) {
                n = (long)sp->st_nlocktimeouts;
                free(sp);
            }
            break;
        }
    }
    pthread_mutex_unlock(&watch_mu);
    return n;
}
