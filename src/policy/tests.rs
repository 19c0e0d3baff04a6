//! The evaluation rules as a table: who, which identity side, which resource policy, which
//! request, and the decision AWS would make.

use super::*;

const OWNER: &str = "111122223333";
const OTHER: &str = "444455556666";
const QUEUE: &str = "arn:aws:sqs:us-east-1:111122223333:jobs";

fn resource(text: &str) -> Policy {
    Policy::parse(text, PolicyKind::Resource).expect("resource policy")
}

fn identity(text: &str) -> Policy {
    Policy::parse(text, PolicyKind::Identity).expect("identity policy")
}

fn decide(who: &Principal, id: Identity<'_>, policy: Option<&Policy>, action: &str, context: &Context) -> Decision {
    let request = Request { principal: who, action, resource: QUEUE, resource_account: OWNER, context };
    evaluate(id, policy, &request)
}

/// (name, who, identity side, resource policy, action, context, expected decision).
type Case<'a> = (&'a str, &'a Principal, Identity<'a>, Option<&'a Policy>, &'a str, &'a Context, Decision);

#[test]
fn the_evaluation_rules_of_aws() {
    use Decision::*;
    let alice = Principal::user(OWNER, "alice");
    let bob = Principal::user(OTHER, "bob");
    let sns = Principal::Service("sns.amazonaws.com".into());
    let send_only = identity(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#);
    let all_but_delete = identity(
        r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"arn:aws:sqs:*:*:jo*"},
                         {"Effect":"Deny","Action":"sqs:Delete*","Resource":"*"}]}"#,
    );
    let nothing = identity(r#"{"Statement":[]}"#);
    let to_other_account = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"SQS:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:jobs"}]}"#,
    );
    let to_bob = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"sqs:Receive*","Resource":"*"}]}"#,
    );
    let to_everyone =
        resource(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:ReceiveMessage","Resource":"*"}]}"#);
    let to_own_account = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sqs:*","Resource":"*"}]}"#,
    );
    let to_alice = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sqs:PurgeQueue","Resource":"*"}]}"#,
    );
    let deny_everyone_purge =
        resource(r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:PurgeQueue","Resource":"*"}]}"#);
    let deny_all_but_alice = resource(
        r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sqs:*","Resource":"*"}]}"#,
    );
    let from_lan = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    let sns_fan_out = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}"#,
    );
    let aws_star = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":"*"}]}"#,
    );
    let lan = Context::new().with("aws:SourceIp", "10.1.2.3");
    let wan = Context::new().with("aws:SourceIp", "203.0.113.1");
    let none = Context::new();
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        ("owner root, no policy", &alice, Identity::Root, None, "sqs:DeleteQueue", &none, Allow),
        ("owner root, explicit deny", &alice, Identity::Root, Some(&deny_everyone_purge), "sqs:PurgeQueue", &none, ExplicitDeny),
        ("owner root, deny of another action", &alice, Identity::Root, Some(&deny_everyone_purge), "sqs:SendMessage", &none, Allow),
        ("identity allows", &alice, Identity::Policy(&send_only), None, "sqs:SendMessage", &none, Allow),
        ("identity does not allow", &alice, Identity::Policy(&send_only), None, "sqs:ReceiveMessage", &none, ImplicitDeny),
        ("identity wildcard action and resource", &alice, Identity::Policy(&all_but_delete), None, "sqs:ReceiveMessage", &none, Allow),
        ("identity deny wins over its allow", &alice, Identity::Policy(&all_but_delete), None, "sqs:DeleteMessage", &none, ExplicitDeny),
        ("empty identity policy", &alice, Identity::Policy(&nothing), None, "sqs:SendMessage", &none, ImplicitDeny),
        ("same account: resource policy naming the user allows", &alice, Identity::Policy(&nothing), Some(&to_alice), "sqs:PurgeQueue", &none, Allow),
        ("same account: resource policy naming everyone allows", &alice, Identity::Policy(&nothing), Some(&to_everyone), "sqs:ReceiveMessage", &none, Allow),
        ("same account: naming the account delegates to identity", &alice, Identity::Policy(&nothing), Some(&to_own_account), "sqs:SendMessage", &none, ImplicitDeny),
        ("same account: delegation plus identity", &alice, Identity::Policy(&send_only), Some(&to_own_account), "sqs:SendMessage", &none, Allow),
        ("other account root without resource policy", &bob, Identity::Root, None, "sqs:SendMessage", &none, ImplicitDeny),
        ("other account named by the queue", &bob, Identity::Root, Some(&to_other_account), "sqs:SendMessage", &none, Allow),
        ("other account named, another action", &bob, Identity::Root, Some(&to_other_account), "sqs:ReceiveMessage", &none, ImplicitDeny),
        ("other account named, its identity must allow too", &bob, Identity::Policy(&nothing), Some(&to_other_account), "sqs:SendMessage", &none, ImplicitDeny),
        ("other account named, identity allows", &bob, Identity::Policy(&send_only), Some(&to_other_account), "sqs:SendMessage", &none, Allow),
        ("other account user named", &bob, Identity::Root, Some(&to_bob), "sqs:ReceiveMessage", &none, Allow),
        ("other account user named, identity must allow", &bob, Identity::Policy(&send_only), Some(&to_bob), "sqs:ReceiveMessage", &none, ImplicitDeny),
        ("NotPrincipal deny spares the named", &alice, Identity::Root, Some(&deny_all_but_alice), "sqs:SendMessage", &none, Allow),
        ("NotPrincipal deny hits the others", &bob, Identity::Root, Some(&deny_all_but_alice), "sqs:SendMessage", &none, ExplicitDeny),
        ("condition holds", &bob, Identity::Root, Some(&from_lan), "sqs:SendMessage", &lan, Allow),
        ("condition fails", &bob, Identity::Root, Some(&from_lan), "sqs:SendMessage", &wan, ImplicitDeny),
        ("condition key absent", &bob, Identity::Root, Some(&from_lan), "sqs:SendMessage", &none, ImplicitDeny),
        ("service named", &sns, Identity::None, Some(&sns_fan_out), "sqs:SendMessage", &none, Allow),
        ("service not named", &sns, Identity::None, Some(&to_other_account), "sqs:SendMessage", &none, ImplicitDeny),
        ("service without any policy", &sns, Identity::None, None, "sqs:SendMessage", &none, ImplicitDeny),
        ("services are not AWS principals", &sns, Identity::None, Some(&aws_star), "sqs:SendMessage", &none, ImplicitDeny),
        ("everyone includes services", &sns, Identity::None, Some(&to_everyone), "sqs:ReceiveMessage", &none, Allow),
        ("AWS * names other accounts", &bob, Identity::Root, Some(&aws_star), "sqs:SendMessage", &none, Allow),
    ];
    for (name, who, id, policy, action, context, expected) in cases {
        assert_eq!(decide(who, id, policy, action, context), expected, "{name}");
    }
}

#[test]
fn not_action_and_not_resource_cover_everything_else() {
    let alice = Principal::user(OWNER, "alice");
    let all_but_purge = identity(r#"{"Statement":[{"Effect":"Allow","NotAction":"sqs:PurgeQueue","Resource":"*"}]}"#);
    let none = Context::new();
    assert_eq!(decide(&alice, Identity::Policy(&all_but_purge), None, "sqs:SendMessage", &none), Decision::Allow);
    assert_eq!(decide(&alice, Identity::Policy(&all_but_purge), None, "sqs:PurgeQueue", &none), Decision::ImplicitDeny);
    let elsewhere =
        identity(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:*","NotResource":"arn:aws:sqs:*:*:jobs"}]}"#);
    assert_eq!(decide(&alice, Identity::Policy(&elsewhere), None, "sqs:SendMessage", &none), Decision::ImplicitDeny);
    let list =
        Request { principal: &alice, action: "sqs:ListQueues", resource: "*", resource_account: OWNER, context: &none };
    let star_only = identity(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*"}]}"#);
    let arn_only =
        identity(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"arn:aws:sqs:*:*:*"}]}"#);
    assert_eq!(evaluate(Identity::Policy(&star_only), None, &list), Decision::Allow);
    assert_eq!(
        evaluate(Identity::Policy(&arn_only), None, &list),
        Decision::ImplicitDeny,
        "actions on no resource need Resource \"*\", as in IAM"
    );
}

#[test]
fn the_time_comes_from_the_context() {
    let bob = Principal::user(OTHER, "bob");
    let until = resource(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*",
            "Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#,
    );
    let before = Context::at(1_800_000_000_000); // 2027
    let after = Context::at(1_900_000_000_000); // 2030
    assert_eq!(decide(&bob, Identity::Root, Some(&until), "sqs:SendMessage", &before), Decision::Allow);
    assert_eq!(decide(&bob, Identity::Root, Some(&until), "sqs:SendMessage", &after), Decision::ImplicitDeny);
}
