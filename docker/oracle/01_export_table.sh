#!/bin/bash
# Runs once, on the Oracle container's first start: the demo EXPORT_TABLE in APP_USER's schema of FREEPDB1,
# with the same shape as the SQLite demo (scripts/demo_db.py) but Oracle types, 400 traces a day for 11 days.
set -euo pipefail
sqlplus -s "${APP_USER}/${APP_USER_PASSWORD}@//localhost:1521/FREEPDB1" <<'SQL'
WHENEVER SQLERROR EXIT SQL.SQLCODE
CREATE TABLE EXPORT_TABLE (
  BARCODE         VARCHAR2(20) PRIMARY KEY,
  TRKDATE         DATE NOT NULL,
  ARRIVETIMESTAMP TIMESTAMP NOT NULL,
  STATUS          VARCHAR2(20) NOT NULL,
  SERVICE_CODE    VARCHAR2(5),
  DEST_CITY       VARCHAR2(40),
  DEST_ZIP        VARCHAR2(5),
  PIECES          NUMBER(3),
  WEIGHT_KG       NUMBER(8, 3),
  COD_AMOUNT      NUMBER(10, 2),
  SCAN_POINT      VARCHAR2(10),
  NOTE            VARCHAR2(200),
  TEST_FLAG       CHAR(1) NOT NULL
);
CREATE INDEX EXPORT_TABLE_TRKDATE ON EXPORT_TABLE (TRKDATE);
INSERT INTO EXPORT_TABLE
SELECT 'RR' || TO_CHAR(d.day, 'YYMMDD') || LPAD(n.n, 5, '0') || 'IT',
       d.day,
       CAST(d.day AS TIMESTAMP) + NUMTODSINTERVAL(MOD(n.n * 7919, 86400), 'SECOND'),
       DECODE(MOD(n.n, 5), 0, 'ACCETTATO', 1, 'IN_TRANSITO', 2, 'IN_CONSEGNA', 3, 'CONSEGNATO', 'GIACENZA'),
       DECODE(MOD(n.n, 4), 0, 'STD', 1, 'EXP', 2, 'PRI', 'RAC'),
       DECODE(MOD(n.n, 5), 0, 'Forlì', 1, 'Milano', 2, 'Roma', 3, 'Napoli', 'Aosta'),
       DECODE(MOD(n.n, 5), 0, '47121', 1, '20121', 2, '00184', 3, '80133', '11100'),
       MOD(n.n, 5) + 1,
       ROUND(MOD(n.n * 37, 30000) / 1000 + 0.1, 3),
       MOD(n.n * 113, 50000) / 100,
       'CP' || TO_CHAR(100 + MOD(n.n * 17, 900)),
       CASE WHEN MOD(n.n, 10) < 3 THEN 'Consegna al portiere' END,
       CASE WHEN MOD(n.n, 50) = 0 THEN 'Y' ELSE 'N' END
FROM (SELECT TRUNC(SYSDATE) - LEVEL + 1 AS day FROM DUAL CONNECT BY LEVEL <= 11) d
CROSS JOIN (SELECT LEVEL - 1 AS n FROM DUAL CONNECT BY LEVEL <= 400) n;
COMMIT;
SQL
