//! The protobuf form of safety results, as the escalation and adverse-event stores keep them (their
//! records are the wire messages) and as the gRPC door returns them: one mapping for both.

use readi_proto::agent::v1 as pb;

use crate::safety;

/// A safety category's wire value.
pub fn category(c: safety::Category) -> pb::Category {
    use safety::Category as C;
    match c {
        C::SuicidalIdeation => pb::Category::SuicidalIdeation,
        C::SuicidalBehavior => pb::Category::SuicidalBehavior,
        C::SelfHarm => pb::Category::SelfHarm,
        C::HarmToOthers => pb::Category::HarmToOthers,
        C::Abuse => pb::Category::Abuse,
        C::HarmfulInstructions => pb::Category::HarmfulInstructions,
        C::EncouragesHarm => pb::Category::EncouragesHarm,
        C::Inflammatory => pb::Category::Inflammatory,
        C::MissedEscalation => pb::Category::MissedEscalation,
    }
}

/// A severity's wire value.
pub fn severity(s: safety::Severity) -> pb::Severity {
    use safety::Severity as S;
    match s {
        S::Low => pb::Severity::Low,
        S::WishToBeDead => pb::Severity::WishToBeDead,
        S::ActiveIdeation => pb::Severity::ActiveIdeation,
        S::Method => pb::Severity::Method,
        S::Intent => pb::Severity::Intent,
        S::Plan => pb::Severity::Plan,
        S::Behavior => pb::Severity::Behavior,
    }
}

/// A verdict's wire value.
pub fn verdict(v: safety::Verdict) -> pb::Verdict {
    match v {
        safety::Verdict::Allow => pb::Verdict::Allow,
        safety::Verdict::Warn => pb::Verdict::Warn,
        safety::Verdict::Escalate => pb::Verdict::Escalate,
        safety::Verdict::Block => pb::Verdict::Block,
    }
}

/// Finding `i` of exchange `exchange_id` on the wire (its id is `<exchange>.<i>`).
pub fn finding(exchange_id: &str, i: usize, f: &safety::Finding) -> pb::Finding {
    pb::Finding {
        id: format!("{exchange_id}.{i}"),
        criterion: pb::Criterion::Safety as i32,
        category: category(f.category) as i32,
        severity: severity(f.severity) as i32,
        turn: f.turn,
        start: f.start as u32,
        end: f.end as u32,
        rule_id: f.rule.to_owned(),
        negated: f.negated,
        historical: f.historical,
        hypothetical: f.hypothetical,
        experiencer: match f.experiencer {
            safety::Experiencer::Patient => pb::Experiencer::Patient,
            safety::Experiencer::Other => pb::Experiencer::Other,
        } as i32,
        escalates: f.escalates,
        reported: f.reported,
        topic: f.topic,
        context_rules: f.context.iter().map(|c| (*c).to_owned()).collect(),
        explanation: f.explanation.clone(),
    }
}
