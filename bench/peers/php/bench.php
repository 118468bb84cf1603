<?php
// php-resque bench driver (chrisboulton master or resque/php-resque).
//
//   php bench.php enqueue N QUEUE                 one by one with Resque::enqueue; prints {"seconds": s}
//   php bench.php work QUEUE INTERVAL [blocking]  Resque_Worker::work (fork per job; INTERVAL 0 = drain, then exit)
// Env: BENCH_PHP_AUTOLOAD = a vendor/autoload.php loading php-resque; BENCH_REDIS=host:port.
// Jobs (args[0] is an associative array): Noop, Sleep {"s": seconds}, Stamp -> RPUSH resque:bench:stamps <unix s>.

error_reporting(E_ALL & ~E_DEPRECATED);   // php-resque calls strftime()
ini_set('display_errors', 'stderr');

$autoload = getenv('BENCH_PHP_AUTOLOAD');
if (!$autoload || !is_file($autoload)) {
    fwrite(STDERR, "BENCH_PHP_AUTOLOAD must name a vendor/autoload.php\n");
    exit(2);
}
require $autoload;

class Noop
{
    public $args;
    public function perform()
    {
    }
}

class Sleep
{
    public $args;
    public function perform()
    {
        usleep((int) (1000000 * $this->args['s']));
    }
}

class Stamp
{
    public $args;
    public function perform()
    {
        Resque::redis()->rpush('bench:stamps', sprintf('%.6f', microtime(true)));
    }
}

Resque::setBackend(getenv('BENCH_REDIS') ?: '127.0.0.1:6379');
$command = isset($argv[1]) ? $argv[1] : '';
switch ($command) {
    case 'enqueue':
        $n = (int) $argv[2];
        $t0 = microtime(true);
        for ($i = 0; $i < $n; $i++) {
            Resque::enqueue($argv[3], 'Noop', array('i' => $i));
        }
        echo json_encode(array('seconds' => microtime(true) - $t0)), "\n";
        break;
    case 'work':
        $worker = new Resque_Worker(array($argv[2]));
        $worker->setLogger(new Psr\Log\NullLogger());   // the worker logs every job otherwise
        $worker->work((float) $argv[3], isset($argv[4]) && $argv[4] === 'blocking');
        break;
    default:
        fwrite(STDERR, "unknown command $command\n");
        exit(2);
}
