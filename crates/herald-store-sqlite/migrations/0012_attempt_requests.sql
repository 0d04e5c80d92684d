-- What an attempt sent: request is JSON {"method", "headers": [[name, value], ...]} with the
-- values of sensitive headers masked; request_body the body when it differed from the
-- message's payload (a payload version conversion or a transformation), NULL otherwise.
-- Both NULL for attempts recorded before this, and for deliveries that sent nothing.
ALTER TABLE attempts ADD COLUMN request TEXT;
ALTER TABLE attempts ADD COLUMN request_body BLOB;
