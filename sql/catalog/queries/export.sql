-- A provider's rows for their data export (services/catalog/handlers.py, ADR 0059): the
-- services they offer, at most @row_limit (the caller asks for one more than its bound).

-- name: ExportProviderServices :many
SELECT * FROM provider_services WHERE provider_id = @user_id
ORDER BY service_id LIMIT @row_limit;
