-- What a receiver answered besides its status and body: its response headers, capped by the
-- workers, as a JSON list of [name, value] pairs. NULL when there was no answer (and for
-- attempts recorded before this column existed).
ALTER TABLE attempts ADD COLUMN response_headers text;
