/*
** sqlnb's replacement for lsm1BestIndex() (written for sqlnb; spliced into the
** fetched lsm_vtab.c at build time by tools/fetch_sources.py).
**
** The plans (idxNum) are the ones lsm1Filter() already implements:
**     0   key = ?1                      (seek EQ, unique)
**     1   key >(=) ?1 AND key <(=) ?2   (seek GE ?1, forward, stop after ?2)
**     2   key >(=) ?1                   (seek GE, forward)
**     3   key <(=) ?1                   (seek LE, backward)
**    99   full scan, forward
**
** Upstream's version assigned a plan number where a constraint index belongs
** (a crash on "key < B AND key >= A") and let the upper bound overwrite the
** lower bound's omit flag (wrong rows for "key > A AND key <= B").
**
** Here every plan is a superset scan: xFilter seeks with GE/LE for both the
** strict and the non-strict operators, and converts the bound to the key's
** storage form (a UINT key clamps negatives and truncates reals). So no
** constraint is ever omitted: SQLite re-checks each one and the rows are exact.
*/
static int lsm1BestIndex(
  sqlite3_vtab *tab,
  sqlite3_index_info *pIdxInfo
){
  int i;
  int iEq = -1;          /* constraint index of key = ? */
  int iLo = -1;          /* constraint index of key > ? or key >= ? */
  int iHi = -1;          /* constraint index of key < ? or key <= ? */
  int idxNum = 99;
  int nArg = 0;
  int bDesc = 0;
  const struct sqlite3_index_constraint *p = pIdxInfo->aConstraint;
  (void)tab;

  for(i=0; i<pIdxInfo->nConstraint; i++, p++){
    if( p->usable==0 || p->iColumn!=0 ) continue;
    switch( p->op ){
      case SQLITE_INDEX_CONSTRAINT_EQ:
        if( iEq<0 ) iEq = i;
        break;
      case SQLITE_INDEX_CONSTRAINT_GE:
      case SQLITE_INDEX_CONSTRAINT_GT:
        if( iLo<0 ) iLo = i;
        break;
      case SQLITE_INDEX_CONSTRAINT_LE:
      case SQLITE_INDEX_CONSTRAINT_LT:
        if( iHi<0 ) iHi = i;
        break;
      default:
        break;
    }
  }

  if( iEq>=0 ){
    idxNum = 0;
    pIdxInfo->aConstraintUsage[iEq].argvIndex = ++nArg;
    pIdxInfo->estimatedCost = 1.0;
    pIdxInfo->estimatedRows = 1;
  }else if( iLo>=0 && iHi>=0 ){
    idxNum = 1;
    pIdxInfo->aConstraintUsage[iLo].argvIndex = ++nArg;
    pIdxInfo->aConstraintUsage[iHi].argvIndex = ++nArg;
    pIdxInfo->estimatedCost = 100.0;
    pIdxInfo->estimatedRows = 100;
  }else if( iLo>=0 ){
    idxNum = 2;
    pIdxInfo->aConstraintUsage[iLo].argvIndex = ++nArg;
    pIdxInfo->estimatedCost = 5000.0;
    pIdxInfo->estimatedRows = 5000;
  }else if( iHi>=0 ){
    idxNum = 3;
    bDesc = 1;
    pIdxInfo->aConstraintUsage[iHi].argvIndex = ++nArg;
    pIdxInfo->estimatedCost = 5000.0;
    pIdxInfo->estimatedRows = 5000;
  }else{
    pIdxInfo->estimatedCost = 2147483647.0;
    pIdxInfo->estimatedRows = 2147483647;
  }
  for(i=0; i<pIdxInfo->nConstraint; i++){
    pIdxInfo->aConstraintUsage[i].omit = 0;
  }
  /* The scan delivers rows in key order (descending for plan 3): a single
  ** ORDER BY on the key in that direction needs no sorting. */
  if( pIdxInfo->nOrderBy==1
   && pIdxInfo->aOrderBy[0].iColumn==0
   && (pIdxInfo->aOrderBy[0].desc!=0)==bDesc ){
    pIdxInfo->orderByConsumed = 1;
  }
  pIdxInfo->idxNum = idxNum;
  return SQLITE_OK;
}
