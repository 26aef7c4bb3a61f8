/*
** sqlnb's additions to lsm1's lsm1Connect() and result codes (written for sqlnb;
** spliced into the fetched lsm_vtab.c at build time by tools/fetch_sources.py).
**
** Read-only mounts. Upstream lsm1Connect() always opens the LSM database
** read-write: even a connection that only reads may then write a checkpoint at
** close, and lsm's mmap code grows the file with ftruncate() (a 4 KiB file
** became 512 KiB after a read). sqlnbLsm1Configure() runs between lsm_new()
** and lsm_open(): when the SQLite database that holds the virtual table, or the
** connection's main database, is read-only (sqlite3_db_readonly() == 1; sqlnb's
** ro modes open with SQLITE_OPEN_READONLY), the lsm handle is opened with
** LSM_CONFIG_READONLY (lsm then never writes the database or its log, and a
** write transaction fails with LSM_READONLY) and with LSM_CONFIG_MMAP 0 (pages
** are read with read(2); lsm's mmap path would extend the file first).
*/
static void sqlnbLsm1Configure(sqlite3 *db, const char *zSchema, lsm_db *pLsm){
  if( sqlite3_db_readonly(db, zSchema)==1 || sqlite3_db_readonly(db, "main")==1 ){
    int bReadonly = 1;
    int nMmap = 0;
    lsm_config(pLsm, LSM_CONFIG_READONLY, &bReadonly);
    lsm_config(pLsm, LSM_CONFIG_MMAP, &nMmap);
  }
}

/*
** Result codes. Upstream turns every lsm error of a cursor or transaction
** method into SQLITE_ERROR ("SQL logic error"). The lsm codes below have the
** same value and meaning as SQLite's, so they are passed on: a damaged page
** that lsm detects is SQLITE_CORRUPT, a write on a read-only mount is
** SQLITE_READONLY. Everything else (LSM_BUSY included, which the helpers of
** sqlnb.lsm diagnose themselves) stays SQLITE_ERROR as upstream has it.
*/
static int sqlnbLsm1Rc(int rc){
  switch( rc & 0xff ){
    case LSM_OK:       return SQLITE_OK;
    case LSM_NOMEM:    return SQLITE_NOMEM;
    case LSM_READONLY: return SQLITE_READONLY;
    case LSM_IOERR:    return SQLITE_IOERR;
    case LSM_CORRUPT:  return SQLITE_CORRUPT;
    case LSM_FULL:     return SQLITE_FULL;
    case LSM_CANTOPEN: return SQLITE_CANTOPEN;
    default:           return SQLITE_ERROR;
  }
}

