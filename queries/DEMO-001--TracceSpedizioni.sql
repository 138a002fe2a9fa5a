-- Tracce spedizioni di un giorno, dal database demo (SQLite).
define DATA='2026-01-20'  --Obbligatorio: Giorno delle tracce (YYYY-MM-DD)
define STATO='%'          --Opzionale: Stato (LIKE); % per tutti

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
WHERE TRKDATE = '&DATA'
  AND STATUS LIKE '&STATO'
  AND TEST_FLAG = 'N'
ORDER BY ARRIVETIMESTAMP;
