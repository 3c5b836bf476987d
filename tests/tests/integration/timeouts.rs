//! A DynamoDB that takes a request and never answers (a stalled connection) is given up on
//! after the client's attempt timeout, tried again, and reported once the operation's time is
//! spent: as an outcome the store can't know, never as a hang until the function's own timeout.

use std::time::{Duration, Instant};

use store::dynamodb::DynamoTable;
use store::{Key, Table, TableError, Write};

/// A listener that accepts every connection and keeps it open, answering nothing.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn a_dynamodb_that_never_answers_is_given_up_on_in_time() {
    let endpoint = silent_endpoint().await;
    let credentials = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "static");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    // The functions' limits, scaled down tenfold to keep the test short.
    let attempt = store::dynamodb::ATTEMPT_TIMEOUT / 10;
    let operation = store::dynamodb::OPERATION_TIMEOUT / 10;
    let table = DynamoTable::new(store::dynamodb::client(&config, attempt, operation), "stalled");
    let key = Key::new("PK", "SK");

    // Bounded here too: without the client's limits this would wait forever.
    let bounded = Duration::from_secs(30);
    let started = Instant::now();
    let read = tokio::time::timeout(bounded, table.get(&key)).await.expect("the client gave up").unwrap_err();
    let took = started.elapsed();
    assert!(matches!(read, TableError::Ambiguous { .. }), "{read:?}");
    assert!(read.is_retryable());
    assert!(took >= attempt && took < operation + Duration::from_secs(2), "a read gave up after {took:?}");

    // A write too: its outcome unknown, which the store resolves by reading again.
    let started = Instant::now();
    let put = Write::Put {
        item: store::Item::default().with("PK", store::Attr::s("PK")).with("SK", store::Attr::s("SK")),
        condition: store::Condition::Always,
    };
    let written =
        tokio::time::timeout(bounded, table.transact(vec![put])).await.expect("the client gave up").unwrap_err();
    assert!(matches!(written, TableError::Ambiguous { .. }), "{written:?}");
    assert!(started.elapsed() < operation + Duration::from_secs(2), "a write gave up after {:?}", started.elapsed());
}
