//! Table definitions shared by both backends: portable SQL types only.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        display_name -> Text,
        email_verified -> Bool,
        mfa_enabled -> Bool,
        is_admin -> Bool,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        password_changed_at -> Nullable<Timestamp>,
        totp_secret -> Nullable<Text>,
        totp_pending_secret -> Nullable<Text>,
        totp_last_step -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    orgs (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    org_members (org_id, user_id) {
        org_id -> Text,
        user_id -> Text,
        role -> Text,
        joined_at -> Timestamp,
    }
}

diesel::table! {
    password_history (id) {
        id -> Text,
        user_id -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    one_time_tokens (id) {
        id -> Text,
        user_id -> Text,
        purpose -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        attempts -> Integer,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        dedupe_key -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> Timestamp,
        org_id -> Nullable<Text>,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        org_id -> Text,
        email_key -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        org_id -> Text,
        name -> Text,
        prefix -> Text,
        scopes -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        rate_limit_per_minute -> Nullable<Integer>,
    }
}

diesel::table! {
    api_key_secrets (secret_hash) {
        secret_hash -> Text,
        key_id -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_key_usage (key_id, minute, method) {
        key_id -> Text,
        minute -> Timestamp,
        method -> Text,
        calls -> BigInt,
        errors -> BigInt,
        rate_limited -> BigInt,
    }
}

diesel::table! {
    /// Failed sign-ins of addresses without an account (see `auth::lockout`).
    address_lockouts (email_key) {
        email_key -> Text,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        code_expires_at -> Nullable<Timestamp>,
        code_attempts -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(invitations -> orgs (org_id));
diesel::joinable!(api_keys -> orgs (org_id));
diesel::joinable!(api_key_secrets -> api_keys (key_id));
diesel::joinable!(one_time_tokens -> users (user_id));
diesel::joinable!(password_history -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(org_members -> orgs (org_id));
diesel::joinable!(org_members -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    orgs,
    org_members,
    password_history,
    one_time_tokens,
    recovery_codes,
    outbox,
    audit_events,
    invitations,
    api_keys,
    api_key_secrets,
    api_key_usage
);

diesel::table! {
    /// Every session end, numbered by the database (written by a trigger on
    /// `sessions.revoked_at`).
    session_ends (seq) {
        seq -> BigInt,
        session_id -> Text,
        ended_ms -> BigInt,
    }
}

diesel::table! {
    /// What happened that someone must hear of (an outbox written with the
    /// change): dispatched into notifications and webhook deliveries.
    events (id) {
        id -> Text,
        kind -> Text,
        org_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        recipients -> Text,
        title -> Text,
        body -> Text,
        data -> Text,
        created_at -> Timestamp,
        notified_at -> Nullable<Timestamp>,
        hooked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        user_id -> Text,
        seq -> BigInt,
        event_id -> Text,
        kind -> Text,
        title -> Text,
        body -> Text,
        data -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notification_preferences (user_id) {
        user_id -> Text,
        in_app -> Bool,
        email -> Bool,
        webhook -> Bool,
        muted -> Text,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(users, notification_preferences);

diesel::table! {
    /// An organization's endpoints that receive its events (`webhooks/`).
    webhooks (id) {
        id -> Text,
        org_id -> Text,
        url -> Text,
        events -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        failure_streak -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// One event sent to one webhook, over all its attempts.
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        org_id -> Text,
        event_id -> Text,
        message_id -> Text,
        kind -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        response_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        attempted_at -> Timestamp,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_deliveries);

diesel::table! {
    /// Call latency per minute, method, acting organization (`''` for none)
    /// and replica (see `performance::store`).
    perf_minutes (bucket_start, method, org_id, replica) {
        bucket_start -> Timestamp,
        method -> Text,
        org_id -> Text,
        replica -> Text,
        calls -> BigInt,
        errors -> BigInt,
        max_us -> BigInt,
        histogram -> Binary,
    }
}

diesel::table! {
    /// `perf_minutes` rolled up by hour, all replicas merged (and all methods
    /// merged, as method `'*'`).
    perf_hours (bucket_start, method, org_id) {
        bucket_start -> Timestamp,
        method -> Text,
        org_id -> Text,
        calls -> BigInt,
        errors -> BigInt,
        max_us -> BigInt,
        p95_us -> Nullable<BigInt>,
        histogram -> Binary,
    }
}

diesel::table! {
    /// `perf_hours` rolled up by quarter of a day (6 hours; and all methods
    /// merged, as `'*'`).
    perf_quarters (bucket_start, method, org_id) {
        bucket_start -> Timestamp,
        method -> Text,
        org_id -> Text,
        calls -> BigInt,
        errors -> BigInt,
        max_us -> BigInt,
        p95_us -> Nullable<BigInt>,
        histogram -> Binary,
    }
}

diesel::table! {
    /// `perf_quarters` rolled up by day (and all methods merged, as `'*'`).
    perf_days (bucket_start, method, org_id) {
        bucket_start -> Timestamp,
        method -> Text,
        org_id -> Text,
        calls -> BigInt,
        errors -> BigInt,
        max_us -> BigInt,
        p95_us -> Nullable<BigInt>,
        histogram -> Binary,
    }
}

diesel::table! {
    /// The hours, quarters and days whose rollup is behind their rows.
    perf_dirty (span, bucket_start) {
        span -> Text,
        bucket_start -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// Performance alert rules of an organization, or of the server
    /// (`org_id` NULL), with their state.
    alert_rules (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        metric -> Text,
        method -> Nullable<Text>,
        threshold -> Double,
        window_secs -> Integer,
        firing_since -> Nullable<Timestamp>,
        last_value -> Nullable<Double>,
        evaluated_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Work one replica at a time does, and who does it until when.
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// An organization's tested lots of a commodity.
    lots (id) {
        id -> Text,
        org_id -> Text,
        commodity -> Text,
        quantity -> Text,
        unit -> Text,
        location -> Text,
        grade -> Text,
        moisture_pct -> Nullable<Text>,
        tested_at -> Timestamp,
        lab -> Nullable<Text>,
        notes -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Trade requests.
    trades (id) {
        id -> Text,
        org_id -> Text,
        side -> Text,
        commodity -> Text,
        quantity -> Text,
        unit -> Text,
        price_limit -> Nullable<Text>,
        currency -> Text,
        lot_id -> Nullable<Text>,
        visibility -> Text,
        expires_at -> Timestamp,
        status -> Text,
        version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        agreed_offer_id -> Nullable<Text>,
        accepted_by -> Nullable<Text>,
        approved_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// The organizations an `invited` trade invites.
    trade_invites (trade_id, org_id) {
        trade_id -> Text,
        org_id -> Text,
    }
}

diesel::table! {
    /// Offers on trades.
    offers (id) {
        id -> Text,
        trade_id -> Text,
        org_id -> Text,
        price -> Text,
        quantity -> Text,
        lot_id -> Nullable<Text>,
        valid_until -> Timestamp,
        note -> Nullable<Text>,
        status -> Text,
        version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Each offer's history.
    offer_steps (id) {
        id -> Text,
        offer_id -> Text,
        at -> Timestamp,
        action -> Text,
        party -> Nullable<Text>,
        price -> Text,
        quantity -> Text,
        note -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    /// Per organization and currency, the deal value above which a trade
    /// needs approval.
    org_approval_thresholds (org_id, currency) {
        org_id -> Text,
        currency -> Text,
        threshold -> Text,
    }
}

diesel::joinable!(offers -> trades (trade_id));
diesel::joinable!(offer_steps -> offers (offer_id));
diesel::allow_tables_to_appear_in_same_query!(trades, offers, trade_invites, offer_steps);
