-- The scale fill for bench/pages.py --fill (set-based: generate_series, INSERT ... SELECT).
-- On the demo city (seed_demo): 1 M residents (500 k phones), 1 M popups (20 % active, 10 % under
-- review, 65 % lifted, 5 % withdrawn) with their raise events, 1 M test results, 300 k appeals
-- (15 % open) with one screenshot and one event each, 1 M venue scans, 100 k clearance tasks,
-- 350 k outbox records and deliveries, 300 k SMS, 1 M personal-data access rows, 200 k arrivals.
-- :'enc_id', :'enc_phone', :'enc_name' are ciphertexts made with the running settings' key.
-- residents: 1 M on the demo's 227 communities
INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, community_id, created_at)
SELECT (ARRAY['王','李','张','刘','陈','杨','赵','黄'])[1 + g % 8] || '某' || g, :'enc_id', md5('scale-' || g),
       '11**************' || lpad((g % 100)::text, 2, '0'), 1 + g % 227, now() - make_interval(mins => (g % 100000)::int)
FROM generate_series(1, 1000000) g;
CREATE TABLE scale_res AS SELECT id, row_number() OVER (ORDER BY id) AS g, community_id FROM communities_resident WHERE id_hash LIKE '________________________________' AND id_encrypted = :'enc_id' AND name LIKE '%某%';
CREATE UNIQUE INDEX ON scale_res (g);
ANALYZE scale_res;
INSERT INTO communities_residentphone (phone_encrypted, phone_hash, phone_masked, is_primary, created_at, resident_id)
SELECT :'enc_phone', md5('phone-' || g), '138****' || lpad((g % 10000)::text, 4, '0'), true, now(), id FROM scale_res WHERE g <= 500000;
-- popups: one per resident, 20 % active, 10 % under review, 65 % lifted, 5 % withdrawn
INSERT INTO healthkit_popupcase (resident_id, popup_type, dedupe_key, cause, source, state, raised_at, lifted_at, updated_at)
SELECT r.id, 1 + g % 4, '', '{}'::jsonb, (ARRAY['engine','upstream','venue','manual'])[1 + g % 4],
       CASE WHEN g % 20 < 4 THEN 'active' WHEN g % 20 < 6 THEN 'under_review' WHEN g % 20 < 19 THEN 'lifted' ELSE 'withdrawn' END,
       now() - make_interval(mins => ((g * 7919) % (90 * 1440))::int),
       CASE WHEN g % 20 >= 6 THEN now() - make_interval(mins => ((g * 7919) % (90 * 1440))::int / 2) END, now()
FROM scale_res r;
CREATE TABLE scale_popup AS SELECT p.id, r.g, p.resident_id, p.state, p.raised_at FROM healthkit_popupcase p JOIN scale_res r ON r.id = p.resident_id;
CREATE UNIQUE INDEX ON scale_popup (g);
ANALYZE scale_popup;
INSERT INTO healthkit_popupevent (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data, at, recorded_at)
SELECT id, 'raised', '', 'active', NULL, 'engine', '', '{}'::jsonb, raised_at, raised_at FROM scale_popup;
-- test results: 1 M
INSERT INTO healthkit_testresult (lab, sample_id, sampled_at, resulted_at, received_at, result, from_other_province, resident_id)
SELECT 'lab-' || lpad((g % 40)::text, 2, '0'), 'S' || lpad(g::text, 10, '0'), now() - make_interval(hours => (g % 2000)::int),
       now() - make_interval(hours => (g % 2000)::int) + interval '6 hours', now(), CASE WHEN g % 50 = 0 THEN 'positive' ELSE 'negative' END,
       g % 50 = 1, id
FROM scale_res r;
-- appeals: 300 k, 15 % open over the statuses, on the residents' popups
INSERT INTO appeals_appeal (reference, resident_id, popup_id, popup_type_claimed, category, priority, status, channel, community_id,
    address_text, contact_phone_encrypted, contact_phone_hash, contact_phone_masked, description, currently_outside_city, outside_since,
    wishes_to_return, filer_unconfirmed, repeat_count, routed_community_id, sla_due_at, sla_breached_at, escalated_at, created_at, updated_at,
    closed_at, close_reason, outcome, language, claimed_id_encrypted, claimed_id_hash, claimed_masked, claimed_name_encrypted, assigned_to_id)
SELECT 'S' || lpad(p.g::text, 9, '0'), p.resident_id, p.id, 1 + p.g % 4,
       (ARRAY['correction','emergency_medical','stranded','old_phone','other'])[1 + p.g % 5], 1 + p.g % 3,
       CASE WHEN p.g % 20 < 3 THEN (ARRAY['new','in_progress','waiting_resident','routed'])[1 + p.g % 4] ELSE 'closed' END,
       (ARRAY['online','phone','open311'])[1 + p.g % 3], r.community_id, '某小区', :'enc_phone', md5('phone-' || p.g), '138****0000', '弹窗纠错',
       p.g % 7 = 0, CASE WHEN p.g % 7 = 0 THEN current_date - (p.g % 60)::int END, false, false, p.g % 4,
       CASE WHEN p.g % 20 = 2 THEN r.community_id END,
       now() - make_interval(mins => ((p.g * 6007) % (90 * 1440))::int) + interval '24 hours',
       CASE WHEN p.g % 11 = 0 THEN now() END, CASE WHEN p.g % 23 = 0 THEN now() END,
       now() - make_interval(mins => ((p.g * 6007) % (90 * 1440))::int), now(),
       CASE WHEN p.g % 20 >= 3 THEN now() - make_interval(mins => ((p.g * 6007) % (90 * 1440))::int / 2) END,
       '', CASE WHEN p.g % 20 >= 3 THEN 'lifted' ELSE '' END, 'zh-hans', :'enc_id', md5('claimed-' || p.g), '王*', :'enc_name',
       CASE WHEN p.g % 20 = 1 THEN 3 END
FROM scale_popup p JOIN scale_res r ON r.g = p.g WHERE p.g <= 300000 AND (p.g % 20 >= 3 OR p.state IN ('active', 'under_review') OR true);
CREATE TABLE scale_appeal AS SELECT id, row_number() OVER (ORDER BY id) AS g FROM appeals_appeal WHERE reference LIKE 'S%';
ANALYZE scale_appeal;
INSERT INTO appeals_appealevidence (draft_key, file, thumbnail, content_type, width, height, size_bytes, sha256, created_at, appeal_id, uploaded_by_id)
SELECT '', 'evidence/scale/' || g || '.png', '', 'image/png', 1080, 2340, 200000, md5('ev-' || g) || md5('ev2-' || g), now(), id, NULL FROM scale_appeal;
INSERT INTO appeals_appealevent (kind, actor_label, note, data, public, at, actor_id, appeal_id)
SELECT 'filed', 'resident', '', '{}'::jsonb, true, now(), NULL, id FROM scale_appeal;
-- venue scans: 1 M over the last 25 days
INSERT INTO venues_venuescan (scanned_at, received_at, resident_id, venue_id)
SELECT now() - make_interval(secs => (g * 2.1)::int), now(), id, 1 + g % 300 FROM scale_res r;
-- clearance tasks for open popups in a community (one in four)
INSERT INTO clearance_clearancetask (resident_id, community_id, popup_id, origin, state, priority, sla_due_at, wishes_to_return, confirmation,
    contact_phone_encrypted, contact_phone_masked, commitment_required, commitment_digest, outcome, decision_reason, created_at, updated_at)
SELECT p.resident_id, r.community_id, p.id, 'risk_link', 'open', 3, p.raised_at + interval '24 hours', false, '{}', '', '', false, '', '', '',
       p.raised_at, now()
FROM scale_popup p JOIN scale_res r ON r.g = p.g WHERE p.state IN ('active', 'under_review') AND p.g % 4 = 0;
-- outbox: one endpoint, 300 k records (lifts) and their deliveries
INSERT INTO healthkit_downstreamendpoint (name, url, token, active, send_id_number, created_at)
SELECT 'rail', 'https://rail.example/hook', '', true, false, now() WHERE NOT EXISTS (SELECT 1 FROM healthkit_downstreamendpoint);

INSERT INTO healthkit_outboxrecord (idempotency_key, kind, popup_type, at, payload, created_at, case_id, resident_id, case_ids, resident_ids)
SELECT 'popup-' || p.id || '-lifted', 'lifted', 1 + p.g % 4, p.raised_at, '{}'::jsonb, now(), p.id, p.resident_id, NULL, NULL
FROM scale_popup p WHERE p.state = 'lifted' AND p.g % 2 = 0;
INSERT INTO healthkit_outboxdelivery (state, attempts, next_attempt_at, last_error, delivered_at, endpoint_id, resident_id, record_id, pages_done)
SELECT CASE WHEN o.id % 50 = 0 THEN 'dead' WHEN o.id % 20 = 0 THEN 'failed' WHEN o.id % 10 = 0 THEN 'pending' ELSE 'delivered' END,
       1, now(), '', CASE WHEN o.id % 10 <> 0 THEN now() END, (SELECT min(id) FROM healthkit_downstreamendpoint), o.resident_id, o.id, 0
FROM healthkit_outboxrecord o WHERE o.kind = 'lifted' AND o.idempotency_key LIKE 'popup-%';
-- SMS: 300 k
INSERT INTO healthkit_smsmessage (idempotency_key, purpose, phone_encrypted, phone_masked, body, state, attempts, next_attempt_at, provider_id,
    last_error, created_at, sent_at, resident_id, delivered_at, pending_encrypted, not_before)
SELECT 'scale-sms-' || g, (ARRAY['clearance_link','otp','appeal_update'])[1 + g % 3], :'enc_phone', '138****0000', '【健康宝】', 
       CASE WHEN g % 100 = 0 THEN 'dead' WHEN g % 10 = 0 THEN 'queued' ELSE 'sent' END, 1, now(), '', '',
       now() - make_interval(mins => (g % 100000)::int), now(), id, NULL, '', NULL
FROM scale_res WHERE g <= 300000;
-- personal-data access audit: 1 M
INSERT INTO communities_personaldataaccess (action, context, at, actor_id, resident_id, ip)
SELECT (ARRAY['view','lookup','reveal_id'])[1 + g % 3], 'console:appeal', now() - make_interval(secs => (g * 7)::int),
       (ARRAY[1,2,3,4,5,6])[1 + g % 6], id, '127.0.0.1'::inet
FROM scale_res;
-- arrivals and test requirements 200 k (signal admins)
INSERT INTO healthkit_arrival (resident_id, arrived_at, from_county, record_key, received_at)
SELECT id, now() - make_interval(hours => (g % 500)::int), '310115', 'scale:arrival:' || g, now() FROM scale_res WHERE g <= 200000;
DROP TABLE scale_res; DROP TABLE scale_popup; DROP TABLE scale_appeal;
VACUUM ANALYZE;
