"""Every rule the ledger enforces, by name: one closed set (the result codes of TigerBeetle are the model).

A rule name is a sentence in snake case that says what must hold (`claim_must_be_on_notice`). Every rejection —
of a command by the domain, of an input by the command line or the API, of a signer by the role rules — names the
field and one of these rules, and the same names appear in the documentation (`docs/rules.md`, generated from this
enum by `python -m ledger.rules`) and in tests that break each rule on purpose.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path


class Rule(StrEnum):
    """The name of a rule; its value is the name written in errors."""

    # -- Existence ------------------------------------------------------------------------------------------------
    CLAIM_MUST_EXIST = "claim_must_exist"
    ID_MUST_NAME_THE_EXPECTED_KIND = "id_must_name_the_expected_kind"
    LEDGER_MUST_BE_INITIALIZED = "ledger_must_be_initialized"
    STORE_SCHEMA_MUST_BE_CURRENT = "store_schema_must_be_current"
    MEMBERSHIP_MUST_EXIST = "membership_must_exist"
    PERIOD_MUST_EXIST = "period_must_exist"
    PLAN_MUST_EXIST = "plan_must_exist"

    # -- Input ---------------------------------------------------------------------------------------------------
    DATE_RANGE_MUST_NOT_BE_EMPTY = "date_range_must_not_be_empty"
    FILE_MUST_BE_A_READABLE_TEXT_FILE = "file_must_be_a_readable_text_file"
    FILE_MUST_HOLD_JSON = "file_must_hold_json"
    MUST_BE_A_DATE = "must_be_a_date"
    MUST_BE_AN_ID = "must_be_an_id"
    MUST_BE_ONE_OF_THE_KNOWN_VALUES = "must_be_one_of_the_known_values"
    PERIOD_REFERENCE_MUST_BE_AN_ID_OR_PLAN_NUMBER = "period_reference_must_be_an_id_or_plan_number"
    PLAN_NAME_MUST_BE_UNIQUE = "plan_name_must_be_unique"
    YEAR_OR_DATE_RANGE_NOT_BOTH = "year_or_date_range_not_both"
    COMMAND_MUST_BE_KNOWN = "command_must_be_known"
    DEMO_NEEDS_AN_EMPTY_DIRECTORY = "demo_needs_an_empty_directory"
    DEMO_REPLACES_ONLY_ITS_OWN_DATA = "demo_replaces_only_its_own_data"
    LINE_MUST_BE_A_JSON_OBJECT = "line_must_be_a_json_object"
    BUNDLE_MUST_BE_VALID = "bundle_must_be_valid"
    COSIGNED_NOTE_MUST_BE_VALID = "cosigned_note_must_be_valid"
    INDEX_MUST_BE_BELOW_THE_INTEGRATED_SIZE = "index_must_be_below_the_integrated_size"
    INDEX_MUST_BE_BELOW_THE_TREE_SIZE = "index_must_be_below_the_tree_size"
    OLD_SIZE_MUST_NOT_EXCEED_THE_NEW = "old_size_must_not_exceed_the_new"
    SIZE_MUST_NOT_EXCEED_THE_INTEGRATED_TREE = "size_must_not_exceed_the_integrated_tree"
    WITNESS_KEY_MUST_BE_A_CUSTODIANS_OR_REGULATORS = "witness_key_must_be_a_custodians_or_regulators"
    CHECKPOINTS_FILE_MUST_LIST_NOTES = "checkpoints_file_must_list_notes"
    LOG_VERIFIER_KEY_MUST_BE_VALID = "log_verifier_key_must_be_valid"
    STATEMENT_MUST_FOLLOW_THE_FORMAT = "statement_must_follow_the_format"
    WITNESS_ENTRY_MUST_BE_A_VERIFIER_KEY_AND_A_URL = "witness_entry_must_be_a_verifier_key_and_a_url"
    WITNESS_KEY_MUST_BE_A_COSIGNATURE_KEY = "witness_key_must_be_a_cosignature_key"
    WITNESS_MUST_BE_LISTED_ONCE = "witness_must_be_listed_once"
    KAFKA_BROKER_MUST_ANSWER = "kafka_broker_must_answer"
    KAFKA_MUST_BE_CONFIGURED = "kafka_must_be_configured"
    TOPIC_MUST_HAVE_THE_CONFIGURED_PARTITIONS = "topic_must_have_the_configured_partitions"
    VIEWS_URL_MUST_BE_POSTGRESQL_OR_SQLITE = "views_url_must_be_postgresql_or_sqlite"
    OUTPUT_DIRECTORY_MUST_EXIST = "output_directory_must_exist"
    OUTPUT_FILE_MUST_BE_WRITABLE = "output_file_must_be_writable"

    COMMAND_ID_MUST_NOT_BE_REUSED_FOR_A_DIFFERENT_REQUEST = "command_id_must_not_be_reused_for_a_different_request"

    A_CHECKPOINT_MUST_BE_PUBLISHED = "a_checkpoint_must_be_published"
    ANCHOR_NAME_MUST_NOT_REPLACE_THE_OPERATORS = "anchor_name_must_not_replace_the_operators"
    DATABASE_URL_MUST_BE_POSTGRESQL = "database_url_must_be_postgresql"
    MUST_BE_A_WHOLE_NUMBER_IN_RANGE = "must_be_a_whole_number_in_range"
    MUST_BE_A_NUMBER_OF_SECONDS_IN_RANGE = "must_be_a_number_of_seconds_in_range"
    STATE_FILE_MUST_BE_VALID = "state_file_must_be_valid"
    DATA_DIR_MUST_NOT_HOLD_A_LEDGER_ALREADY = "data_dir_must_not_hold_a_ledger_already"
    FILE_MUST_EXIST = "file_must_exist"
    PUBLIC_KEY_FILE_MUST_BE_VALID = "public_key_file_must_be_valid"
    TRUST_ANCHORS_MUST_BE_PUBLISHED = "trust_anchors_must_be_published"
    TRUST_ANCHORS_MUST_BE_VALID = "trust_anchors_must_be_valid"
    LOG_VERIFIER_KEY_MUST_BE_KNOWN = "log_verifier_key_must_be_known"
    KEY_FILE_MUST_OPEN_WITH_THE_PASSPHRASE = "key_file_must_open_with_the_passphrase"
    KEY_FILES_MUST_AGREE = "key_files_must_agree"
    KEY_MUST_BE_ED25519 = "key_must_be_ed25519"
    KEY_MUST_EXIST = "key_must_exist"
    KEY_NAME_MUST_BE_NEW = "key_name_must_be_new"
    KEY_NAME_MUST_NAME_A_KEY_IN_THE_KEY_DIRECTORY = "key_name_must_name_a_key_in_the_key_directory"

    # -- Signed requests (RFC 9421) ----------------------------------------------------------------------------------
    SIGNATURE_ALGORITHM_MUST_BE_ED25519 = "signature_algorithm_must_be_ed25519"
    SIGNATURE_COMPONENTS_MUST_BE_STRINGS = "signature_components_must_be_strings"
    SIGNATURE_INPUT_MUST_BE_A_STRUCTURED_DICTIONARY = "signature_input_must_be_a_structured_dictionary"
    SIGNATURE_INPUT_MUST_BE_PRESENT = "signature_input_must_be_present"
    SIGNATURE_KEYID_MUST_BE_A_KEY_ID = "signature_keyid_must_be_a_key_id"
    SIGNATURE_KEY_MUST_BE_IN_THE_KEYRING = "signature_key_must_be_in_the_keyring"
    SIGNATURE_MUST_BE_TAGGED_FOR_THE_LEDGER = "signature_must_be_tagged_for_the_ledger"
    SIGNATURE_MUST_COVER_METHOD_AUTHORITY_PATH_AND_QUERY = "signature_must_cover_method_authority_path_and_query"
    SIGNATURE_MUST_COVER_THE_CONTENT_DIGEST = "signature_must_cover_the_content_digest"
    SIGNATURE_MUST_NOT_BE_CREATED_IN_THE_FUTURE = "signature_must_not_be_created_in_the_future"
    SIGNATURE_MUST_NOT_HAVE_EXPIRED = "signature_must_not_have_expired"
    SIGNATURE_MUST_VERIFY = "signature_must_verify"
    SIGNATURE_NONCE_MUST_BE_16_TO_128_CHARACTERS = "signature_nonce_must_be_16_to_128_characters"
    SIGNATURE_NONCE_MUST_BE_NEW = "signature_nonce_must_be_new"
    SIGNATURE_TIMES_MUST_BE_INTEGERS = "signature_times_must_be_integers"
    SIGNATURE_VALIDITY_MUST_BE_SHORT = "signature_validity_must_be_short"
    SIGNED_REQUESTS_MUST_FIT_THE_REPLAY_WINDOW = "signed_requests_must_fit_the_replay_window"

    # -- The public log and its witnesses ----------------------------------------------------------------------------
    CHECKPOINT_MUST_BE_A_SIGNED_NOTE = "checkpoint_must_be_a_signed_note"
    CHECKPOINT_MUST_BE_CONSISTENT_WITH_EVERY_CHECKPOINT_SEEN = (
        "checkpoint_must_be_consistent_with_every_checkpoint_seen"
    )
    CHECKPOINT_MUST_BE_SIGNED_BY_A_TRUSTED_LOG_KEY = "checkpoint_must_be_signed_by_a_trusted_log_key"
    CHECKPOINT_MUST_BE_SIGNED_BY_THE_LOG_KEY = "checkpoint_must_be_signed_by_the_log_key"
    CHECKPOINT_ORIGIN_MUST_BE_A_LOG_THE_WITNESS_FOLLOWS = "checkpoint_origin_must_be_a_log_the_witness_follows"
    CHECKPOINT_ORIGIN_MUST_NOT_CHANGE = "checkpoint_origin_must_not_change"
    CHECKPOINT_TRUSTED_SIGNATURES_MUST_VERIFY = "checkpoint_trusted_signatures_must_verify"
    EMPTY_TREE_MUST_HAVE_THE_EMPTY_ROOT = "empty_tree_must_have_the_empty_root"
    ENTRY_MUST_FIT_A_UINT16_LENGTH = "entry_must_fit_a_uint16_length"
    ENTRY_MUST_HASH_TO_ITS_LEAF = "entry_must_hash_to_its_leaf"
    TILE_INDEX_MUST_BE_3_DIGIT_ELEMENTS = "tile_index_must_be_3_digit_elements"
    TILE_LEVEL_MUST_BE_0_TO_63 = "tile_level_must_be_0_to_63"
    TILE_MUST_BE_INTEGRATED = "tile_must_be_integrated"
    TILE_MUST_BE_STORED = "tile_must_be_stored"
    TILE_MUST_LIE_WITHIN_THE_TREE = "tile_must_lie_within_the_tree"
    TILE_PATH_MUST_BE_CANONICAL = "tile_path_must_be_canonical"
    TILE_PATH_MUST_FOLLOW_TLOG_TILES = "tile_path_must_follow_tlog_tiles"
    TILE_WIDTH_MUST_BE_1_TO_255 = "tile_width_must_be_1_to_255"
    WITNESS_OLD_SIZE_MUST_BE_A_PLAIN_DECIMAL = "witness_old_size_must_be_a_plain_decimal"
    WITNESS_OLD_SIZE_MUST_BE_THE_LATEST_COSIGNED = "witness_old_size_must_be_the_latest_cosigned"
    WITNESS_OLD_SIZE_MUST_NOT_EXCEED_THE_CHECKPOINT = "witness_old_size_must_not_exceed_the_checkpoint"
    REQUEST_MUST_NAME_A_RESOURCE = "request_must_name_a_resource"
    WITNESS_REQUEST_MUST_BE_AT_MOST_64_KIB = "witness_request_must_be_at_most_64_kib"
    WITNESS_PROOF_MUST_BE_BASE64_HASHES = "witness_proof_must_be_base64_hashes"
    WITNESS_PROOF_MUST_BE_EMPTY_FROM_SIZE_0 = "witness_proof_must_be_empty_from_size_0"
    WITNESS_PROOF_MUST_HAVE_AT_MOST_63_LINES = "witness_proof_must_have_at_most_63_lines"
    WITNESS_REQUEST_MUST_BE_OLD_SIZE_PROOF_AND_CHECKPOINT = "witness_request_must_be_old_size_proof_and_checkpoint"
    WITNESS_REQUEST_MUST_BE_UTF8 = "witness_request_must_be_utf8"

    # -- The HTTP API --------------------------------------------------------------------------------------------
    CURSOR_MUST_BE_ONE_THE_SERVICE_GAVE = "cursor_must_be_one_the_service_gave"
    LAST_EVENT_ID_MUST_BE_ONE_THE_FEED_SENT = "last_event_id_must_be_one_the_feed_sent"
    REQUEST_MUST_MATCH_THE_API_SCHEMA = "request_must_match_the_api_schema"
    SIGNING_KEY_MUST_BE_THE_MEMBERS_OWN = "signing_key_must_be_the_members_own"
    SIGNING_KEY_MUST_HAVE_THE_ROUTES_ROLE = "signing_key_must_have_the_routes_role"
    SIZE_MUST_NOT_EXCEED_THE_PUBLISHED_CHECKPOINT = "size_must_not_exceed_the_published_checkpoint"
    STATEMENT_MUST_BE_SENT_AS_CSV = "statement_must_be_sent_as_csv"
    REPORT_DRAFT_MUST_BE_RECENT = "report_draft_must_be_recent"
    REPORT_ENVELOPE_MUST_BE_A_DRAFTED_ONE = "report_envelope_must_be_a_drafted_one"
    REPORT_MUST_BE_SIGNED_BY_THE_REQUESTING_KEY = "report_must_be_signed_by_the_requesting_key"
    EVENT_SIGNATURE_MUST_VERIFY = "event_signature_must_verify"
    LOG_URL_MUST_ANSWER = "log_url_must_answer"
    INPUT_OR_LOG_URL_NOT_BOTH = "input_or_log_url_not_both"

    # -- Events --------------------------------------------------------------------------------------------------
    EVENT_TIME_MUST_NOT_PRECEDE_STREAM = "event_time_must_not_precede_stream"

    # -- Keys and signers ----------------------------------------------------------------------------------------
    FUND_MOVEMENTS_MUST_BE_SIGNED_BY_A_CUSTODIAN_KEY = "fund_movements_must_be_signed_by_a_custodian_key"
    INVESTIGATIONS_MUST_BE_SIGNED_BY_AN_INVESTIGATOR_KEY = "investigations_must_be_signed_by_an_investigator_key"
    KEY_MUST_BE_REGISTERED = "key_must_be_registered"
    KEY_MUST_NOT_BE_REGISTERED_TWICE = "key_must_not_be_registered_twice"
    KEY_MUST_NOT_BE_REVOKED_TWICE = "key_must_not_be_revoked_twice"
    CUSTODIAN_AND_REGULATOR_KEYS_MUST_BE_TRUST_ANCHORS = "custodian_and_regulator_keys_must_be_trust_anchors"
    ROOT_KEY_SIGNS_ONLY_KEYRING_EVENTS = "root_key_signs_only_keyring_events"
    KEYRING_CHANGES_MUST_BE_SIGNED_BY_THE_ROOT_KEY = "keyring_changes_must_be_signed_by_the_root_key"
    MEMBER_AND_JUROR_KEYS_NAME_THEIR_MEMBER_AND_OTHERS_DO_NOT = (
        "member_and_juror_keys_name_their_member_and_others_do_not"
    )
    MEMBER_REQUESTS_MUST_BE_SIGNED_BY_THE_MEMBER_OR_THE_OPERATOR_ON_THEIR_BEHALF = (
        "member_requests_must_be_signed_by_the_member_or_the_operator_on_their_behalf"
    )
    REGULATOR_REPORTS_MUST_BE_SIGNED_BY_A_REGULATOR_KEY = "regulator_reports_must_be_signed_by_a_regulator_key"
    ROOT_KEY_CANNOT_BE_REVOKED = "root_key_cannot_be_revoked"
    SEALED_REQUESTS_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY_FOR_NO_ONE_NAMED = (
        "sealed_requests_must_be_signed_by_an_operator_key_for_no_one_named"
    )
    SIGNING_KEY_MUST_BE_REGISTERED_AND_VALID_FOR_ITS_ROLE = "signing_key_must_be_registered_and_valid_for_its_role"
    STREAM_ID_MUST_BE_NEW = "stream_id_must_be_new"
    THIS_EVENT_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY = "this_event_must_be_signed_by_an_operator_key"
    VOTES_MUST_BE_SIGNED_BY_THE_JURORS_OWN_KEY = "votes_must_be_signed_by_the_jurors_own_key"

    # -- Bounds --------------------------------------------------------------------------------------------------
    AID_MUST_NOT_EXCEED_THE_LEDGER_BOUND = "aid_must_not_exceed_the_ledger_bound"
    BALANCE_MUST_NOT_EXCEED_THE_BOUND = "balance_must_not_exceed_the_bound"
    DEPOSIT_MUST_NOT_EXCEED_THE_BOUND = "deposit_must_not_exceed_the_bound"
    SHARE_CAPS_MUST_NOT_EXCEED_THE_BALANCE_BOUND = "share_caps_must_not_exceed_the_balance_bound"

    # -- Plans ---------------------------------------------------------------------------------------------------
    PLAN_CANNOT_TERMINATE_BEFORE_ANNOUNCED_END = "plan_cannot_terminate_before_announced_end"
    PLAN_END_MUST_BE_IN_THE_FUTURE = "plan_end_must_be_in_the_future"
    PLAN_MUST_ANNOUNCE_CLOSING_BEFORE_TERMINATION = "plan_must_announce_closing_before_termination"
    PLAN_MUST_BE_OPEN_TO_AMEND_RULES = "plan_must_be_open_to_amend_rules"
    PLAN_MUST_BE_OPEN_TO_ANNOUNCE_CLOSING = "plan_must_be_open_to_announce_closing"
    PLAN_MUST_BE_OPEN_TO_JOIN = "plan_must_be_open_to_join"
    REFUND_DEADLINE_MUST_NOT_PRECEDE_END = "refund_deadline_must_not_precede_end"
    RULES_CANNOT_TAKE_EFFECT_IN_THE_PAST = "rules_cannot_take_effect_in_the_past"
    RULES_VERSIONS_MUST_TAKE_EFFECT_IN_ORDER = "rules_versions_must_take_effect_in_order"

    # -- Membership ----------------------------------------------------------------------------------------------
    A_ZERO_SHARE_CANNOT_FAIL = "a_zero_share_cannot_fail"
    AGE_MUST_BE_WITHIN_THE_PLAN_BAND = "age_must_be_within_the_plan_band"
    PROVINCE_MUST_BE_A_PROVINCE_OF_CHINA = "province_must_be_a_province_of_china"
    CHANNEL_DEBIT_FAILURES_ARE_ONLY_FOR_POSTPAID_PLANS = "channel_debit_failures_are_only_for_postpaid_plans"
    CLAIMANT_CANNOT_VOTE_ON_OWN_CLAIM = "claimant_cannot_vote_on_own_claim"
    CONVERSION_IS_ACCEPTED_ONCE = "conversion_is_accepted_once"
    CONVERSION_IS_FOR_MEMBERS_AT_THE_CLOSING = "conversion_is_for_members_at_the_closing"
    CONVERSION_MUST_BE_OFFERED = "conversion_must_be_offered"
    DEBIT_CAN_FAIL_ONCE_PER_PERIOD = "debit_can_fail_once_per_period"
    DEBIT_MUST_BE_RECOVERED_BEFORE_GRACE_ENDS = "debit_must_be_recovered_before_grace_ends"
    DEBITS_CAN_FAIL_ONLY_BEFORE_SETTLEMENT = "debits_can_fail_only_before_settlement"
    DEPOSIT_REFERENCE_MUST_BE_NEW = "deposit_reference_must_be_new"
    DEPOSITS_ARE_ONLY_FOR_PREPAID_PLANS = "deposits_are_only_for_prepaid_plans"
    DEPOSITS_GO_TO_THE_PAYING_MEMBER = "deposits_go_to_the_paying_member"
    EXCLUSION_APPLIES_ONLY_TO_ILLNESS_IN_THE_WAITING_PERIOD = "exclusion_applies_only_to_illness_in_the_waiting_period"
    JUROR_CAN_QUALIFY_ONCE = "juror_can_qualify_once"
    JUROR_MUST_BE_A_MEMBER_FOR_THE_MINIMUM_DAYS = "juror_must_be_a_member_for_the_minimum_days"
    JUROR_MUST_BE_A_PAYING_MEMBER = "juror_must_be_a_paying_member"
    JUROR_MUST_BE_AN_ACTIVE_MEMBER = "juror_must_be_an_active_member"
    JUROR_MUST_HAVE_NO_FRAUD_RECORD = "juror_must_have_no_fraud_record"
    JUROR_MUST_PASS_THE_QUALIFICATION_EXAM = "juror_must_pass_the_qualification_exam"
    MEMBER_MUST_BE_ACTIVE = "member_must_be_active"
    MEMBER_MUST_BE_LOCKED_IN_THE_PERIOD = "member_must_be_locked_in_the_period"
    ONLY_AN_OUTSTANDING_FAILED_DEBIT_CAN_BE_RECOVERED = "only_an_outstanding_failed_debit_can_be_recovered"
    PREPAID_DEBIT_IS_RECOVERED_ONLY_FROM_A_BALANCE_THAT_COVERS_IT = (
        "prepaid_debit_is_recovered_only_from_a_balance_that_covers_it")
    PAYER_MUST_BE_IN_THE_SAME_PLAN = "payer_must_be_in_the_same_plan"
    PAYER_MUST_PAY_FOR_THEMSELVES = "payer_must_pay_for_themselves"
    PAYER_WITH_ACTIVE_FAMILY_CANNOT_EXIT = "payer_with_active_family_cannot_exit"
    PERIOD_MUST_BE_ASSESSED = "period_must_be_assessed"
    PERIOD_MUST_BELONG_TO_THE_MEMBERS_PLAN = "period_must_belong_to_the_members_plan"
    REFUND_MUST_BE_DUE = "refund_must_be_due"
    REFUND_MUST_NOT_EXCEED_AMOUNT_DUE = "refund_must_not_exceed_amount_due"


    # -- Claims --------------------------------------------------------------------------------------------------
    AGE_AT_DIAGNOSIS_MUST_BE_COVERED = "age_at_diagnosis_must_be_covered"
    AGE_AT_DIAGNOSIS_MUST_MATCH_THE_AGE_AT_JOINING = "age_at_diagnosis_must_match_the_age_at_joining"
    AMOUNT_MUST_NOT_EXCEED_THE_PLAN_MAXIMUM_FOR_THE_AGE_AT_DIAGNOSIS = (
        "amount_must_not_exceed_the_plan_maximum_for_the_age_at_diagnosis"
    )
    AN_APPROVAL_RECOMMENDS_A_POSITIVE_AMOUNT = "an_approval_recommends_a_positive_amount"
    CLAIM_IS_INVESTIGATED_ONCE_AFTER_FILING = "claim_is_investigated_once_after_filing"
    CLAIM_IS_PAID_AFTER_ITS_PERIOD_SETTLES = "claim_is_paid_after_its_period_settles"
    CLAIM_IS_PAID_AT_MOST_ONCE = "claim_is_paid_at_most_once"
    CLAIM_MUST_BE_FILED_WITHIN_THE_CLAIM_WINDOW = "claim_must_be_filed_within_the_claim_window"
    CLAIM_MUST_BE_INCLUDED_IN_AN_ASSESSED_PERIOD = "claim_must_be_included_in_an_assessed_period"
    CLAIM_MUST_BE_INVESTIGATED_BEFORE_NOTICE = "claim_must_be_investigated_before_notice"
    CLAIM_MUST_BE_ON_NOTICE = "claim_must_be_on_notice"
    CLAIMANT_CANNOT_OBJECT_TO_OWN_CLAIM = "claimant_cannot_object_to_own_claim"
    CONDITION_MUST_FIT_THE_CATEGORY = "condition_must_fit_the_category"
    CONDITION_MUST_FIT_THE_MEMBERS_SEX = "condition_must_fit_the_members_sex"
    CONDITION_MUST_FIT_THE_MEMBERS_AGE = "condition_must_fit_the_members_age"
    ONLY_A_PARTY_KEY_CARRIES_A_PUBLIC_NAME = "only_a_party_key_carries_a_public_name"
    DECISION_ONLY_AFTER_THE_NOTICE_ENDS = "decision_only_after_the_notice_ends"
    DIAGNOSIS_MUST_NOT_BE_IN_THE_FUTURE = "diagnosis_must_not_be_in_the_future"
    DIAGNOSIS_MUST_NOT_PRECEDE_JOINING = "diagnosis_must_not_precede_joining"
    DIAGNOSIS_MUST_PRECEDE_THE_PLAN_END = "diagnosis_must_precede_the_plan_end"
    ILLNESS_IN_THE_WAITING_PERIOD_IS_NOT_COVERED = "illness_in_the_waiting_period_is_not_covered"
    INVESTIGATION_REASON_MUST_BE_A_PRELIMINARY_REASON = "investigation_reason_must_be_a_preliminary_reason"
    JUROR_MUST_BE_IN_THE_CLAIMS_PLAN = "juror_must_be_in_the_claims_plan"
    JUROR_MUST_BE_OF_AGE = "juror_must_be_of_age"
    JURY_IS_REQUESTED_ONCE = "jury_is_requested_once"
    JURY_ONLY_AGAINST_A_REJECTION = "jury_only_against_a_rejection"
    MEMBER_HAS_AN_OPEN_CLAIM = "member_has_an_open_claim"
    MEMBER_MUST_BE_COVERED_ON_THE_DIAGNOSIS_DATE = "member_must_be_covered_on_the_diagnosis_date"
    NOTHING_LEFT_TO_PAY_AFTER_ARREARS = "nothing_left_to_pay_after_arrears"
    OBJECTION_IS_RESOLVED_ONCE = "objection_is_resolved_once"
    OBJECTION_MUST_EXIST = "objection_must_exist"
    OBJECTIONS_MUST_BE_RESOLVED_FIRST = "objections_must_be_resolved_first"
    OBJECTOR_MUST_BE_IN_THE_CLAIMS_PLAN = "objector_must_be_in_the_claims_plan"
    ONE_OBJECTION_PER_MEMBER = "one_objection_per_member"
    ONE_VOTE_PER_JUROR = "one_vote_per_juror"
    ONLY_AN_APPROVED_CLAIM_IS_INCLUDED_ONCE = "only_an_approved_claim_is_included_once"
    ONLY_DURING_THE_PUBLIC_NOTICE = "only_during_the_public_notice"
    ONLY_THE_CLAIMANT_MAY_REQUEST_A_JURY = "only_the_claimant_may_request_a_jury"
    PAYOUT_MUST_NOT_EXCEED_THE_PLAN_MAXIMUM = "payout_must_not_exceed_the_plan_maximum"
    VOTES_NEED_A_JURY_REQUEST = "votes_need_a_jury_request"

    # -- Sharing periods -----------------------------------------------------------------------------------------
    ADVANCE_MUST_NOT_EXCEED_THE_SHORTFALL = "advance_must_not_exceed_the_shortfall"
    ADVANCE_ONLY_BEFORE_SETTLEMENT = "advance_only_before_settlement"
    ADVANCE_REFERENCE_MUST_BE_NEW = "advance_reference_must_be_new"
    COLLECTION_FROM_BALANCES_IS_ONLY_FOR_PREPAID_PLANS = "collection_from_balances_is_only_for_prepaid_plans"
    COLLECTION_PRECEDES_THE_NEXT_ASSESSMENT = "collection_precedes_the_next_assessment"
    COLLECTION_STARTS_ON_THE_COLLECTION_DAY = "collection_starts_on_the_collection_day"
    NOTICE_DAY_MUST_BE_IN_THE_PLAN_CALENDAR = "notice_day_must_be_in_the_plan_calendar"
    NOTICE_DAY_MUST_FOLLOW_THE_PREVIOUS_PERIOD_AND_TODAY = "notice_day_must_follow_the_previous_period_and_today"
    ONLY_AN_ASSESSED_UNSETTLED_PERIOD_IS_COLLECTED = "only_an_assessed_unsettled_period_is_collected"
    PERIOD_CANNOT_BE_ASSESSED_BEFORE_ITS_CUTOFF = "period_cannot_be_assessed_before_its_cutoff"
    PERIOD_CANNOT_SETTLE_BEFORE_COLLECTION_AND_GRACE_END = "period_cannot_settle_before_collection_and_grace_end"
    PERIOD_IS_ASSESSED_ONCE = "period_is_assessed_once"
    PERIOD_IS_SETTLED_ONCE = "period_is_settled_once"
    PERIOD_MUST_OPEN_BEFORE_ITS_CUTOFF = "period_must_open_before_its_cutoff"
    PREPAID_PERIOD_MUST_BE_COLLECTED_BEFORE_SETTLEMENT = "prepaid_period_must_be_collected_before_settlement"
    PREVIOUS_PERIOD_MUST_BE_ASSESSED_FIRST = "previous_period_must_be_assessed_first"
    PREVIOUS_PERIOD_MUST_BE_COLLECTED_FIRST = "previous_period_must_be_collected_first"
    PREVIOUS_PERIOD_MUST_EXIST = "previous_period_must_exist"
    SUBSIDY_MUST_BE_RECEIVED_BEFORE_SETTLEMENT = "subsidy_must_be_received_before_settlement"
    SUBSIDY_MUST_NOT_EXCEED_THE_ASSESSED_SUBSIDY = "subsidy_must_not_exceed_the_assessed_subsidy"
    SUBSIDY_REFERENCE_MUST_BE_NEW = "subsidy_reference_must_be_new"
    TAIL_PERIOD_NEEDS_AN_APPROVED_CLAIM = "tail_period_needs_an_approved_claim"
    WIND_DOWN_FOLLOWS_THE_CLOSING_ANNOUNCEMENT = "wind_down_follows_the_closing_announcement"
    SUCCESSOR_MUST_BE_ANOTHER_PLAN = "successor_must_be_another_plan"
    SURPLUS_IS_RELEASED_AFTER_TERMINATION = "surplus_is_released_after_termination"
    SURPLUS_IS_RELEASED_AFTER_THE_CLAIM_TAIL = "surplus_is_released_after_the_claim_tail"
    SURPLUS_IS_RELEASED_ONCE = "surplus_is_released_once"
    SURPLUS_MUST_BE_HELD_TO_BE_RELEASED = "surplus_must_be_held_to_be_released"
    EVERY_PERIOD_MUST_BE_SETTLED_FIRST = "every_period_must_be_settled_first"
    SUCCESSOR_PLAN_MUST_COVER_THE_MEMBERS_AGE = "successor_plan_must_cover_the_members_age"

    # -- Privacy ------------------------------------------------------------------------------------------------
    MEMBER_IS_ERASED_ONCE = "member_is_erased_once"
    MEMBER_MUST_HAVE_LEFT_BEFORE_ERASURE = "member_must_have_left_before_erasure"
    MEMBER_MUST_NOT_BE_ERASED = "member_must_not_be_erased"
    RETENTION_PERIOD_MUST_HAVE_ENDED = "retention_period_must_have_ended"
    REVEALED_RECORD_MUST_OPEN_ITS_COMMITMENT = "revealed_record_must_open_its_commitment"
    REVEALED_FILE_MUST_HOLD_REVEALED_RECORDS = "revealed_file_must_hold_revealed_records"
    SEALED_VALUES_ARE_REVEALED_ONLY_TO_THE_MEMBER_THE_CUSTODIAN_OR_THE_REGULATOR = (
        "sealed_values_are_revealed_only_to_the_member_the_custodian_or_the_regulator"
    )
    VAULT_KEY_MUST_BE_32_BYTES_OF_BASE64 = "vault_key_must_be_32_bytes_of_base64"
    VAULT_KEY_MUST_EXIST = "vault_key_must_exist"

    # -- Disclosures and reports ---------------------------------------------------------------------------------
    PERIOD_IS_DISCLOSED_ONCE = "period_is_disclosed_once"
    PERIOD_MUST_BE_SETTLED_TO_BE_DISCLOSED = "period_must_be_settled_to_be_disclosed"
    REPORT_RANGE_MUST_NOT_BE_EMPTY = "report_range_must_not_be_empty"


def sections() -> dict[str, list[Rule]]:
    """The rules by the section of this module they are declared in (its `# -- Section` comments)."""
    found: dict[str, list[Rule]] = {}
    section = "Rules"
    for line in Path(__file__).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("# -- "):
            section = stripped[5:].rstrip("- ").strip()
        elif " = " in stripped and stripped.split(" = ")[0] in Rule.__members__:
            found.setdefault(section, []).append(Rule[stripped.split(" = ")[0]])
    return found


def where_enforced(rule: Rule, root: Path) -> list[str]:
    """The modules under `root` (the project's packages) that raise or return `rule`."""
    needle = f"Rule.{rule.name}"
    return sorted(str(path.relative_to(root)) for package in ("ledger", "audit", "consumers")
                  for path in (root / package).rglob("*.py")
                  if path.name != "rules.py" and needle in path.read_text(encoding="utf-8"))


def document(root: Path) -> str:
    """`docs/rules.md`: every rule, by section, as it reads and where it is enforced (generated; do not edit)."""
    lines = ["# Rules", "",
             "Every rejection names a field and one of these rules (`ledger/rules.py`, the one declared set); the exit",
             "status is 2 and nothing is written. This page is generated from the enum by `python -m ledger.rules`;",
             "the test suite breaks each rule on purpose and checks that this page is up to date.", ""]
    for section, members in sections().items():
        lines += [f"## {section}", "", "| rule | reads | enforced in |", "|---|---|---|"]
        lines += [f"| `{rule.value}` | {rule.value.replace('_', ' ')} | "
                  f"{', '.join(f'`{m}`' for m in where_enforced(rule, root))} |" for rule in members]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    project = Path(__file__).resolve().parent.parent
    (project / "docs" / "rules.md").write_text(document(project), encoding="utf-8")
    sys.stdout.write(f"wrote docs/rules.md: {len(Rule)} rules\n")
