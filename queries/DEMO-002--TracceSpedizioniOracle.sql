-- Tracce spedizioni di un giorno, dal database Oracle demo (docker compose: docker/oracle/01_export_table.sh).
define DATA='2026-01-20'  --Obbligatorio: Giorno delle tracce (YYYY-MM-DD)

SELECT BARCODE,
       TRKDATE,
       ARRIVETIMESTAMP,
       STATUS,
       SERVICE_CODE,
       DEST_CITY,
       DEST_ZIP,
       PIECES,
       WEIGHT_KG,
       COD_AMOUNT,
       SCAN_POINT,
       NOTE
FROM EXPORT_TABLE
WHERE TRKDATE >= TO_DATE('&DATA', 'YYYY-MM-DD')
  AND TRKDATE < TO_DATE('&DATA', 'YYYY-MM-DD') + 1
  AND TEST_FLAG = 'N'
ORDER BY ARRIVETIMESTAMP;
