<?php
// Interop driver for php-resque (chrisboulton/php-resque or the resque/php-resque fork).
//
//   php peer.php COMMAND ARGS...
//
// Env: INTEROP_PHP_AUTOLOAD = path of a vendor/autoload.php that loads php-resque, credis and psr/log;
//      PEER_REDIS=host:port (default 127.0.0.1:6379); PEER_NAME (recorded as "by", default "php");
//      PEER_NAMESPACE (php-resque's PREFIX, default "resque"); VERBOSE=1 for worker logging on stderr;
//      PEER_CLUSTER=host:port,host:port: a Redis Cluster instead (credis's Credis_Cluster, phpredis RedisCluster).
//      Each command prints one JSON line on stdout.
// ARGS_JSON is php-resque's $args (an array/object); php-resque stores it as the payload's args[0].

error_reporting(E_ALL & ~E_DEPRECATED);   // php-resque calls strftime()
ini_set('display_errors', 'stderr');

function out($value)
{
    fwrite(STDOUT, json_encode($value) . "\n");
}

function fail($message, $code = 1)
{
    out(array('error' => $message));
    exit($code);
}

$autoload = getenv('INTEROP_PHP_AUTOLOAD');
if (!$autoload || !is_file($autoload)) {
    fail('INTEROP_PHP_AUTOLOAD must name a vendor/autoload.php', 2);
}
require $autoload;

class Interop_Echo
{
    public $args;
    public $job;

    public function perform()
    {
        Resque::redis()->rpush('interop:results', json_encode(array(
            'by' => getenv('PEER_NAME') ?: 'php',
            'class' => $this->job->payload['class'],
            'args' => $this->args,
            'id' => isset($this->job->payload['id']) ? $this->job->payload['id'] : null,
        )));
    }
}

// Sleeps args["seconds"] (default 1), then records like Interop_Echo.
class Interop_Sleep extends Interop_Echo
{
    public function perform()
    {
        usleep((int) (1000000 * (isset($this->args['seconds']) ? $this->args['seconds'] : 1)));
        parent::perform();
    }
}

class Interop_Fail
{
    public function perform()
    {
        throw new RuntimeException('interop failure');
    }
}

// "echo" is a reserved word, so App\Jobs\Echo can only exist as an alias.
class_alias('Interop_Echo', 'App\Jobs\Echo');

class Interop_Logger extends Psr\Log\AbstractLogger
{
    public function log($level, $message, array $context = array())
    {
        if (getenv('VERBOSE')) {
            foreach ($context as $key => $value) {
                $message = str_replace('{' . $key . '}', is_scalar($value) || method_exists($value, '__toString') ? (string) $value : json_encode($value), $message);
            }
            fwrite(STDERR, "[$level] $message\n");
        }
    }
}

function json_arg($text)
{
    $value = json_decode($text === null ? '{}' : $text, true);
    if (!is_array($value)) {
        fail('ARGS_JSON must be a JSON array or object');
    }
    return $value;
}

function make_worker($queues)
{
    if (!$queues) {
        fail('QUEUES required');
    }
    $worker = new Resque_Worker(explode(',', $queues));
    $worker->setLogger(new Interop_Logger());
    return $worker;
}

function require_scheduler()
{
    if (!class_exists('ResqueScheduler') || !class_exists('ResqueScheduler_Worker')) {
        fail('ResqueScheduler is not available in this php-resque', 2);
    }
}

if (getenv('PEER_CLUSTER')) {
    $seeds = explode(',', getenv('PEER_CLUSTER'));
    Resque::setBackend(function ($db) use ($seeds) {
        return new Resque_Redis(null, null, new Credis_Cluster(null, $seeds));
    });
} else {
    Resque::setBackend(getenv('PEER_REDIS') ?: '127.0.0.1:6379');
}
if (getenv('PEER_NAMESPACE') !== false) {
    Resque_Redis::prefix(getenv('PEER_NAMESPACE'));
}
$argv = array_slice($_SERVER['argv'], 1);
$command = array_shift($argv);
$arg = function ($i) use ($argv) {
    return isset($argv[$i]) ? $argv[$i] : null;
};

switch ($command) {
    case 'enqueue': // QUEUE CLASS ARGS_JSON [track]
        out(array('id' => Resque::enqueue($arg(0), $arg(1), json_arg($arg(2)), $arg(3) === 'track')));
        break;
    case 'enqueue_many': // JOBS_JSON: [[QUEUE, CLASS, ARGS, TRACK], ...] in one process; prints the ids
        $jobs = json_decode($arg(0) === null ? '[]' : $arg(0), true);
        if (!is_array($jobs)) {
            fail('JOBS_JSON must be a JSON array of [queue, class, args, track]');
        }
        $ids = array();
        foreach ($jobs as $job) {
            $ids[] = Resque::enqueue($job[0], $job[1], is_array($job[2]) ? $job[2] : array(), !empty($job[3]));
        }
        out(array('ids' => $ids));
        break;
    case 'status': // ID [PREFIX]  (PREFIX: fork only)
        $status = new Resque_Job_Status($arg(0), (string) $arg(1));
        out(array('tracking' => $status->isTracking(), 'status' => $status->get()));
        break;
    case 'work': // QUEUES: drain, then exit
        $before = array(Resque_Stat::get('processed'), Resque_Stat::get('failed'));
        $worker = make_worker($arg(0));
        $worker->work(0);
        out(array(
            'worker' => (string) $worker,
            'processed' => Resque_Stat::get('processed') - $before[0],
            'failed' => Resque_Stat::get('failed') - $before[1],
        ));
        break;
    case 'worker': // QUEUES: long-running, stop with SIGQUIT
        $worker = make_worker($arg(0));
        out(array('worker' => (string) $worker, 'pid' => getmypid()));
        $worker->work(0.1);
        out(array('stopped' => (string) $worker));
        break;
    case 'workers':
        $list = array();
        foreach (Resque_Worker::all() as $worker) {
            $list[] = array(
                'id' => (string) $worker,
                'job' => $worker->job(),
                'processed' => $worker->getStat('processed'),
                'failed' => $worker->getStat('failed'),
            );
        }
        out($list);
        break;
    case 'dequeue': // QUEUE CLASS [ID]
        $items = $arg(2) === null ? array($arg(1)) : array($arg(1) => $arg(2));
        out(array('removed' => Resque::dequeue($arg(0), $items)));
        break;
    case 'enqueue_in': // SECONDS QUEUE CLASS ARGS_JSON
        require_scheduler();
        ResqueScheduler::enqueueIn((int) $arg(0), $arg(1), $arg(2), json_arg($arg(3)));
        out(array('ok' => true));
        break;
    case 'scheduler_once': // move due delayed items to their queues, once
        require_scheduler();
        $scheduler = new ResqueScheduler_Worker();
        $scheduler->handleDelayedItems();
        out(array('delayed_left' => ResqueScheduler::getDelayedQueueScheduleSize()));
        break;
    default:
        fail('unknown command ' . json_encode($command), 64);
}
